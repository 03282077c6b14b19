#include <boost/test/unit_test.hpp>

#include <string>

#include "gateway/metrics/metrics.h"

namespace mailgate {
namespace {

bool has(const std::string& text, const std::string& line) { return text.find("\n" + line + "\n") != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(replies_are_counted_once_per_reply_by_class) {
  Metrics metrics;
  metrics.repliesWritten("220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n354 go\r\n");
  metrics.repliesWritten("550 5.7.1 no\r\n421\r\n");
  std::string text = metrics.render();
  BOOST_TEST(has(text, "mailgate_replies_total{class=\"2xx\"} 2"), text);
  BOOST_TEST(has(text, "mailgate_replies_total{class=\"3xx\"} 1"));
  BOOST_TEST(has(text, "mailgate_replies_total{class=\"4xx\"} 1"));
  BOOST_TEST(has(text, "mailgate_replies_total{class=\"5xx\"} 1"));
}

BOOST_AUTO_TEST_CASE(records_feed_transactions_stages_rules_and_refusals) {
  Metrics metrics;
  auto transaction = [](std::string id, std::string action, std::string downstream) {
    return nlohmann::json{{"type", "transaction"}, {"transaction", id}, {"action", action}, {"downstream_reply", downstream},
                          {"durations", {{"total_ms", 12.5}, {"downstream_ms", 3.0}}},
                          {"stages", nlohmann::json::array({
                               {{"stage", "lists"}, {"phase", "connect"}, {"verdict", "continue"}, {"ms", 0.1}},
                               {{"stage", "rules"}, {"phase", "data"}, {"verdict", "tag"}, {"ms", 2.0},
                                {"hits", nlohmann::json::array({{{"rule", "R\"1"}, {"score", 6.0}}})}}})}};
  };
  metrics.observe(transaction("S.1", "tag", "250 2.0.0 Ok"));
  metrics.observe(transaction("S.2", "reject", "550 5.7.1 no"));  // connect stage not counted again
  metrics.observe({{"type", "connection"}, {"reason", "max_connections_per_client"}});
  metrics.observe({{"type", "connection"}, {"reason", "bad PROXY v1 header: whatever text"}});
  metrics.observe({{"type", "session"}, {"action", "reject"}, {"stages", nlohmann::json::array()}});
  std::string text = metrics.render();
  BOOST_TEST(has(text, "mailgate_transactions_total{action=\"tag\"} 1"), text);
  BOOST_TEST(has(text, "mailgate_transactions_total{action=\"reject\"} 1"));
  BOOST_TEST(has(text, "mailgate_transactions_total{action=\"accept\"} 0"));
  BOOST_TEST(has(text, "mailgate_stage_verdicts_total{stage=\"lists\",verdict=\"continue\"} 1"));
  BOOST_TEST(has(text, "mailgate_stage_verdicts_total{stage=\"rules\",verdict=\"tag\"} 2"));
  BOOST_TEST(has(text, "mailgate_rule_hits_total{rule=\"R\\\"1\"} 2"));  // label values escaped
  BOOST_TEST(has(text, "mailgate_downstream_replies_total{class=\"2xx\"} 1"));
  BOOST_TEST(has(text, "mailgate_downstream_replies_total{class=\"5xx\"} 1"));
  BOOST_TEST(has(text, "mailgate_connections_refused_total{reason=\"max_connections_per_client\"} 1"));
  BOOST_TEST(has(text, "mailgate_connections_refused_total{reason=\"bad_proxy_header\"} 1"));  // not the free text
  BOOST_TEST(has(text, "mailgate_connections_refused_total{reason=\"connect_stage\"} 1"));
  BOOST_TEST(has(text, "mailgate_stage_duration_seconds_bucket{stage=\"rules\",le=\"0.0025\"} 2"));
  BOOST_TEST(has(text, "mailgate_stage_duration_seconds_bucket{stage=\"rules\",le=\"0.001\"} 0"));
  BOOST_TEST(has(text, "mailgate_stage_duration_seconds_count{stage=\"rules\"} 2"));
  BOOST_TEST(has(text, "mailgate_transaction_duration_seconds_bucket{le=\"+Inf\"} 2"));
}

BOOST_AUTO_TEST_CASE(open_connections_go_up_and_down) {
  Metrics metrics;
  metrics.connectionOpened();
  metrics.connectionOpened();
  metrics.connectionClosed();
  std::string text = metrics.render();
  BOOST_TEST(has(text, "mailgate_connections_open 1"), text);
  BOOST_TEST(has(text, "mailgate_connections_total 2"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
