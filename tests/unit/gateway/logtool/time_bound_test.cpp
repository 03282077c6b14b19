#include "gateway/logtool/time_bound.h"

#include <boost/test/unit_test.hpp>

namespace mailgate::logtool {
namespace {

// 2026-12-07T00:00:00Z, from `date -u -d 2026-12-07 +%s`.
constexpr EpochMs december_7 = 1796601600LL * 1000;
constexpr EpochMs hour = 3600 * 1000;
constexpr EpochMs minute = 60 * 1000;

BOOST_AUTO_TEST_SUITE(logtool_time_bound)

BOOST_AUTO_TEST_CASE(record_times_read_to_the_millisecond) {
  BOOST_TEST(*parseAbsoluteTime("2026-12-07T14:05:09.608Z") == december_7 + 14 * hour + 5 * minute + 9608);
  BOOST_TEST(*parseAbsoluteTime("2026-12-07T14:05:09Z") == december_7 + 14 * hour + 5 * minute + 9000);
  BOOST_TEST(*parseAbsoluteTime("1970-01-01T00:00:00.000Z") == 0);
  // Finer than milliseconds: cut, not rounded.
  BOOST_TEST(*parseAbsoluteTime("2026-12-07T00:00:00.123999Z") == december_7 + 123);
}

BOOST_AUTO_TEST_CASE(what_people_type_is_utc) {
  BOOST_TEST(*parseAbsoluteTime("2026-12-07") == december_7);
  BOOST_TEST(*parseAbsoluteTime("2026-12-07 14:00") == december_7 + 14 * hour);
  BOOST_TEST(*parseAbsoluteTime("2026-12-07 14:00:30") == december_7 + 14 * hour + 30000);
  BOOST_TEST(*parseAbsoluteTime("2026-12-07T14:00:00Z") == december_7 + 14 * hour);
  BOOST_TEST(*parseAbsoluteTime("2026-12-07T14:00") == december_7 + 14 * hour);
}

BOOST_AUTO_TEST_CASE(an_offset_is_taken_off) {
  BOOST_TEST(*parseAbsoluteTime("2026-12-07T14:00:00+02:00") == december_7 + 12 * hour);
  BOOST_TEST(*parseAbsoluteTime("2026-12-07 14:00-0530") == december_7 + 19 * hour + 30 * minute);
}

BOOST_AUTO_TEST_CASE(no_time_is_made_of_nonsense) {
  for (const char* text : {"", "2026", "2026-12", "2026-13-01", "2026-02-30", "2026-12-07T25:00", "2026-12-07 14",
                           "2026-12-07T14:00:00.Z", "2026-12-07T14:00:00Q", "2026-12-07x", "07-12-2026",
                           "2026-12-07T14:60"})
    BOOST_TEST(!parseAbsoluteTime(text).has_value(), text);
}

BOOST_AUTO_TEST_CASE(relative_bounds_count_back_from_now) {
  EpochMs now = december_7 + 20 * hour;
  BOOST_TEST(*parseTimeBound("2h", now) == now - 2 * hour);
  BOOST_TEST(*parseTimeBound("90s", now) == now - 90000);
  BOOST_TEST(*parseTimeBound("15m", now) == now - 15 * minute);
  BOOST_TEST(*parseTimeBound("3d", now) == now - 72 * hour);
  BOOST_TEST(*parseTimeBound("1w", now) == now - 168 * hour);
  BOOST_TEST(*parseTimeBound("1h30m", now) == now - 90 * minute);
  BOOST_TEST(*parseTimeBound("2026-12-07 14:00", now) == december_7 + 14 * hour);
}

BOOST_AUTO_TEST_CASE(a_bad_bound_says_what_is_expected) {
  for (const char* text : {"", "2", "h", "2x", "2h3", "-2h", "yesterday", "2h 30m"}) {
    auto bound = parseTimeBound(text, 0);
    BOOST_TEST(!bound.has_value(), text);
    if (!bound) BOOST_TEST(bound.error().find("2026-12-07") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
