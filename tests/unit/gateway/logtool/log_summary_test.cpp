#include "gateway/logtool/log_summary.h"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "sample_records.h"

namespace mailgate::logtool {
namespace {

LogSummary summarise(std::initializer_list<std::string_view> lines) {
  LogSummary summary;
  test::PaddedReader reader;
  for (auto line : lines) {
    const LogRecord* record = reader.read(line);
    BOOST_REQUIRE(record != nullptr);
    summary.add(*record, decisionOf(*record));
  }
  return summary;
}

BOOST_AUTO_TEST_SUITE(logtool_log_summary)

BOOST_AUTO_TEST_CASE(counts_by_kind_and_action) {
  auto summary = summarise({test::tagged_line, test::rejected_line, test::downstream_line, test::relay_denied_line,
                            test::command_line, test::connection_line, test::session_line, test::overflow_line,
                            test::overflow_line});
  BOOST_TEST(summary.records() == 7u);  // log_overflow records are counted apart
  BOOST_TEST(summary.types().at("transaction") == 4u);
  BOOST_TEST(summary.types().at("command") == 1u);
  BOOST_TEST(summary.types().at("connection") == 1u);
  BOOST_TEST(summary.types().at("session") == 1u);
  BOOST_TEST(summary.actions().at("reject") == 4u);
  BOOST_TEST(summary.actions().at("tempfail") == 2u);
  BOOST_TEST(summary.actions().at("tag") == 1u);
  BOOST_TEST(!summary.actions().contains("accept"));
  BOOST_TEST(summary.overflowRecords() == 2u);
  BOOST_TEST(summary.droppedRecords() == 24u);
}

BOOST_AUTO_TEST_CASE(refusals_group_by_stage_and_codes) {
  auto summary = summarise({test::rejected_line, test::rejected_line, test::relay_denied_line, test::downstream_line,
                            test::command_line, test::connection_line, test::session_line, test::tagged_line});
  const auto& refusals = summary.refusals();
  BOOST_TEST(refusals.size() == 6u);
  BOOST_TEST(refusals.at("rules 550 5.7.1").count == 2u);
  BOOST_TEST(refusals.at("rules 550 5.7.1").example == "550 5.7.1 Message rejected as spam");
  BOOST_TEST(refusals.at("smtp 554 5.7.1").count == 1u);
  BOOST_TEST(refusals.at("downstream 451 4.4.1").count == 1u);
  BOOST_TEST(refusals.at("smtp 500 5.5.2").count == 1u);
  BOOST_TEST(refusals.at("smtp 421 4.7.0").count == 1u);
  BOOST_TEST(refusals.at("helo_check 550 5.7.1").count == 1u);
  BOOST_TEST(refusalKey("rules", "") == "rules (no reply code)");
  BOOST_TEST(refusalKey("smtp", "554 Go away") == "smtp 554");
}

BOOST_AUTO_TEST_CASE(senders_clients_rules_and_hours) {
  auto summary = summarise({test::tagged_line, test::rejected_line, test::downstream_line, test::relay_denied_line,
                            test::command_line, test::connection_line, test::session_line});
  auto domains = summary.senderDomains();
  BOOST_TEST(domains.size() == 3u);
  BOOST_TEST(domains.at("mail.sender.example") == 1u);  // folded to lower case
  BOOST_TEST(domains.at("b.example") == 2u);
  BOOST_TEST(domains.at("<>") == 1u);
  auto networks = summary.clientNetworks();
  BOOST_TEST(networks.at("192.0.2.0/24") == 1u);
  BOOST_TEST(networks.at("2001:db8:5::/48") == 1u);
  BOOST_TEST(networks.at("198.51.100.0/24") == 2u);
  BOOST_TEST(networks.at("203.0.113.0/24") == 3u);
  BOOST_TEST(summary.rules().at("MG_PHARMA_DRUGS") == 2u);
  BOOST_TEST(summary.rules().at("MG_DATE_MISSING") == 1u);
  const auto& hours = summary.hours();
  BOOST_TEST(hours.size() == 3u);
  BOOST_TEST(hours.at("2026-12-07T14").at("tag") == 1u);
  BOOST_TEST(hours.at("2026-12-07T15").at("reject") == 1u);
  BOOST_TEST(hours.at("2026-12-07T15").at("tempfail") == 1u);
  BOOST_TEST(hours.at("2026-12-07T16").at("reject") == 3u);
  BOOST_TEST(hours.at("2026-12-07T16").at("tempfail") == 1u);
}

BOOST_AUTO_TEST_CASE(summaries_of_two_halves_merge_into_the_whole) {
  // Worker threads each summarise a part of the log; merged in order they must say what one
  // summary of it all says, to the example reply kept for each refusal.
  auto whole = summarise({test::tagged_line, test::rejected_line, test::downstream_line, test::relay_denied_line,
                          test::command_line, test::connection_line, test::session_line, test::overflow_line,
                          test::rejected_line});
  auto merged = summarise({test::tagged_line, test::rejected_line, test::downstream_line, test::relay_denied_line});
  merged.merge(summarise({test::command_line, test::connection_line, test::session_line, test::overflow_line,
                          test::rejected_line}));
  BOOST_TEST(merged.json(100) == whole.json(100));
  BOOST_TEST(merged.records() == 8u);
}

BOOST_AUTO_TEST_CASE(the_json_summary_ranks_and_cuts_at_top) {
  auto summary = summarise({test::rejected_line, test::rejected_line, test::relay_denied_line, test::downstream_line,
                            test::command_line});
  summary.setMalformed(3);
  auto json = nlohmann::json::parse(summary.json(2));
  BOOST_TEST(json["records"] == 5);
  BOOST_TEST(json["actions"]["reject"] == 4);
  BOOST_TEST(json["malformed_lines"] == 3);
  BOOST_REQUIRE(json["refusal_reasons"].size() == 2u);
  BOOST_TEST(json["refusal_reasons"][0]["reason"] == "rules 550 5.7.1");
  BOOST_TEST(json["refusal_reasons"][0]["count"] == 2);
  // Ties are broken by name, so the answer does not depend on hashing.
  BOOST_TEST(json["refusal_reasons"][1]["reason"] == "downstream 451 4.4.1");
  BOOST_REQUIRE(json["sender_domains"].size() == 2u);
  BOOST_TEST(json["sender_domains"][0]["domain"] == "<>");
  BOOST_TEST(json["sender_domains"][0]["count"] == 2);
  BOOST_TEST(json["sender_domains"][1]["domain"] == "b.example");
  BOOST_TEST(json["sender_domains"][1]["count"] == 2);
  BOOST_TEST(json["hours"][0]["hour"] == "2026-12-07T15:00Z");
  BOOST_TEST(json["hours"][0]["total"] == 3);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
