#include "gateway/logtool/record_filter.h"

#include <boost/test/unit_test.hpp>

#include <array>

#include "gateway/logtool/log_options.h"
#include "sample_records.h"

namespace mailgate::logtool {
namespace {

constexpr EpochMs december_7 = 1796601600LL * 1000;
constexpr std::array<std::string_view, 8> all_lines = {test::tagged_line,  test::rejected_line,   test::downstream_line,
                                                       test::relay_denied_line, test::command_line, test::connection_line,
                                                       test::session_line, test::overflow_line};

// Which of all_lines the options select, as a string of indexes: "0 3 5".
std::string selected(const std::vector<std::string>& arguments) {
  auto options = parseLogArguments(arguments, december_7 + 24 * 3600 * 1000);
  BOOST_REQUIRE_MESSAGE(options.has_value(), (options ? std::string() : options.error()));
  std::string result;
  test::PaddedReader reader;
  for (std::size_t i = 0; i < all_lines.size(); ++i) {
    const LogRecord* record = reader.read(all_lines[i]);
    BOOST_REQUIRE(record != nullptr);
    const RecordFilter& filter = options->filter;
    if (filter.lineMatches(all_lines[i]) && filter.recordMatches(*record) && filter.decisionMatches(decisionOf(*record)))
      result += (result.empty() ? "" : " ") + std::to_string(i);
  }
  return result;
}

BOOST_AUTO_TEST_SUITE(logtool_record_filter)

BOOST_AUTO_TEST_CASE(no_option_selects_everything) { BOOST_TEST(selected({}) == "0 1 2 3 4 5 6 7"); }

BOOST_AUTO_TEST_CASE(time_bounds) {
  BOOST_TEST(selected({"--since", "2026-12-07 15:00"}) == "1 2 3 4 5 6 7");  // since is inclusive
  BOOST_TEST(selected({"--until", "2026-12-07 15:00"}) == "0");               // until is not
  BOOST_TEST(selected({"--since", "2026-12-07T15:00:00Z", "--until", "2026-12-07T16:00:00Z"}) == "1 2");
  BOOST_TEST(selected({"--since=2026-12-07T16:11:00+00:00"}) == "5 6 7");
  // Relative to "now", which selected() puts at the end of the day.
  BOOST_TEST(selected({"--since", "8h"}) == "3 4 5 6 7");
}

BOOST_AUTO_TEST_CASE(actions_repeated_or_comma_separated) {
  BOOST_TEST(selected({"--action", "reject"}) == "1 3 4 6");
  BOOST_TEST(selected({"--action", "reject,tempfail"}) == "1 2 3 4 5 6");
  BOOST_TEST(selected({"--action", "tag", "--action", "tempfail"}) == "0 2 5");
  BOOST_TEST(selected({"--action=accept"}) == "");
}

BOOST_AUTO_TEST_CASE(sender_and_recipients) {
  BOOST_TEST(selected({"--from", "a@b.example"}) == "2 3");
  BOOST_TEST(selected({"--from", "A@B.EXAMPLE"}) == "2 3");
  BOOST_TEST(selected({"--from", "sender.example"}) == "0");  // mail.sender.example is a subdomain
  BOOST_TEST(selected({"--from", "@b.example"}) == "2 3");
  BOOST_TEST(selected({"--from", "<>"}) == "1");
  BOOST_TEST(selected({"--to", "bob@example.org"}) == "0");  // the second recipient counts too
  BOOST_TEST(selected({"--to", "alice@example.org"}) == "0");
  BOOST_TEST(selected({"--to", "example.org"}) == "0 1 2");
  BOOST_TEST(selected({"--to", "other.org", "--to", "carol@example.org"}) == "1 3");
  BOOST_TEST(selected({"--to", "example.org", "--from", "<>"}) == "1");
}

BOOST_AUTO_TEST_CASE(clients_by_address_or_network) {
  BOOST_TEST(selected({"--client", "192.0.2.7"}) == "0");
  BOOST_TEST(selected({"--client", "203.0.113.0/24"}) == "4 5 6");
  BOOST_TEST(selected({"--client", "2001:db8:5::/48"}) == "1");
  BOOST_TEST(selected({"--client", "198.51.100.20/31"}) == "2 3");
}

BOOST_AUTO_TEST_CASE(subject_and_message_id) {
  BOOST_TEST(selected({"--subject", "pills"}) == "0");
  BOOST_TEST(selected({"--subject", "CHEAP PILLS"}) == "0");
  BOOST_TEST(selected({"--subject", "nothing like it"}) == "");
  BOOST_TEST(selected({"--message-id", "abc@sender.example"}) == "0");
  BOOST_TEST(selected({"--message-id", "<abc@sender.example>"}) == "0");
  BOOST_TEST(selected({"--message-id", "abc@sender"}) == "");  // exact, not a substring
}

BOOST_AUTO_TEST_CASE(stage_and_rule) {
  BOOST_TEST(selected({"--stage", "rules"}) == "0 1");
  BOOST_TEST(selected({"--stage", "spf"}) == "");  // it only shadowed
  BOOST_TEST(selected({"--stage", "smtp"}) == "3 4 5");
  BOOST_TEST(selected({"--stage", "downstream"}) == "2");
  BOOST_TEST(selected({"--stage", "helo_check"}) == "6");
  BOOST_TEST(selected({"--rule", "MG_PHARMA_DRUGS"}) == "0 1");
  BOOST_TEST(selected({"--rule", "mg_date_missing"}) == "0");
  BOOST_TEST(selected({"--rule", "MG_PHARMA"}) == "");
}

BOOST_AUTO_TEST_CASE(free_text_words_all_match_the_raw_line) {
  BOOST_TEST(selected({"relay", "ACCESS"}) == "3");
  BOOST_TEST(selected({"relay", "spam"}) == "");
  BOOST_TEST(selected({"--", "spam"}) == "1");
  BOOST_TEST(selected({"tls\":true"}) == "1");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
