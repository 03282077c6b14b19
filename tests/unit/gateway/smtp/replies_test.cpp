// The gateway's own replies are those of the README's reply table: every code and enhanced code in
// the catalogue (gateway/smtp/replies.h) appears there, so the table cannot fall behind the code.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "gateway/smtp/replies.h"

namespace mailgate {
namespace {

std::string readmeReplyTable() {
  std::ifstream file(std::string(MAILGATE_TEST_DATA) + "/../README.md");
  std::stringstream text;
  text << file.rdbuf();
  std::string readme = text.str();
  auto start = readme.find("\n## Replies\n");
  BOOST_REQUIRE(start != std::string::npos);
  auto end = readme.find("\n## ", start + 1);
  return readme.substr(start, end - start);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replies)

BOOST_AUTO_TEST_CASE(every_reply_of_the_catalogue_is_in_the_readme_table) {
  std::string table = readmeReplyTable();
  auto catalogue = replies::catalogue();
  BOOST_TEST(catalogue.size() >= 20u);
  for (const auto& entry : catalogue) {
    std::string written = std::to_string(entry.code) + (entry.enhanced.empty() ? "" : " " + entry.enhanced);
    // "`354`", "`250 2.1.0 Ok`", "`220 <hostname> ESMTP mailgate`": the code, then the enhanced code.
    bool found = table.find("`" + written + "`") != std::string::npos || table.find("`" + written + " ") != std::string::npos;
    BOOST_TEST(found, "README's reply table lacks " << written);
  }
}

BOOST_AUTO_TEST_CASE(every_reply_is_well_formed_and_of_its_class) {
  for (const auto& entry : replies::catalogue()) {
    if (entry.enhanced.empty()) continue;
    BOOST_TEST(entry.enhanced[0] - '0' == entry.code / 100, entry.code << " " << entry.enhanced);
  }
  BOOST_TEST(replies::downstreamUnavailable("x").code() == 451);
  BOOST_TEST(replies::relayDenied("a@b.example").summary() == "554 5.7.1 <a@b.example>: Relay access denied");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
