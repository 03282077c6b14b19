#include "gateway/logtool/parallel_scan.h"

#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>

#include "../../temp_directory.h"
#include "gateway/logtool/log_inputs.h"

namespace mailgate::logtool {
namespace {

BOOST_AUTO_TEST_SUITE(logtool_parallel_scan)

BOOST_AUTO_TEST_CASE(chunks_selected_at_once_come_back_in_log_order) {
  // Several chunks' worth of records, a malformed line in every few hundred: what comes back is
  // every record in order and the exact count of malformed lines, as one thread would say.
  mailgate::test::TempDirectory folder;
  std::string text, expected;
  uint64_t malformed = 0;
  for (int i = 0; i < 60000; ++i) {
    std::string line = R"({"type":"transaction","n":)" + std::to_string(i) + R"(,"pad":")" + std::string(100, 'p') + "\"}";
    if (i % 397 == 0) {
      text += line.substr(0, 40) + "\n";
      ++malformed;
      continue;
    }
    text += line + "\n";
    expected += line + "\n";
  }
  BOOST_REQUIRE(text.size() > 5 * chunk_octets);
  auto log = OpenLog::open(folder.write("big.jsonl", text));
  BOOST_REQUIRE(log.has_value());
  auto options = parseLogArguments({"--json"}, 0);
  BOOST_REQUIRE(options.has_value());
  std::string json;
  uint64_t counted = 0, selections = 0;
  auto read = scanInParallel(*log->lines, *options, false, [&](Selection&& selection) {
    json += selection.json;
    counted += selection.malformed;
    ++selections;
  });
  BOOST_TEST(read.has_value());
  BOOST_TEST(selections >= 5u);
  BOOST_TEST(counted == malformed);
  BOOST_TEST((json == expected));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
