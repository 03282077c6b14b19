#include "gateway/logtool/decision.h"

#include <boost/test/unit_test.hpp>

#include "sample_records.h"

namespace mailgate::logtool {
namespace {


BOOST_AUTO_TEST_SUITE(logtool_decision)

BOOST_AUTO_TEST_CASE(the_tagging_stage_decided_a_tag) {
  test::PaddedReader reader;
  Decision decision = decisionOf(*reader.read(test::tagged_line));
  BOOST_TEST(decision.stage == "rules");
  BOOST_TEST(decision.reason == "score 2.8 (MG_DATE_MISSING,MG_PHARMA_DRUGS)");
}

BOOST_AUTO_TEST_CASE(a_shadow_stage_never_decides) {
  test::PaddedReader reader;
  Decision decision = decisionOf(*reader.read(test::rejected_line));
  BOOST_TEST(decision.stage == "rules");
  BOOST_TEST(decision.reason == "score 17.5");
}

BOOST_AUTO_TEST_CASE(a_shadow_stage_with_the_same_reply_never_decides) {
  test::PaddedReader reader;
  Decision decision = decisionOf(*reader.read(
      R"({"type":"transaction","action":"reject","reply":"550 5.7.1 No","stages":[{"stage":"dnsbl","verdict":"reject","reason":"listed","reply":"550 5.7.1 No","shadow":true},{"stage":"rules","verdict":"reject","reason":"score 20","reply":"550 5.7.1 No"}]})"));
  BOOST_TEST(decision.stage == "rules");
  // Relay denied by the protocol, where a shadow stage would have refused: the protocol decided.
  Decision relay = decisionOf(*reader.read(
      R"({"type":"transaction","action":"reject","reply":"554 5.7.1 <x@y.example>: Relay access denied","reason":"reset","stages":[{"stage":"spf","verdict":"reject","reason":"fail","reply":"550 5.7.23 SPF validation failed","shadow":true}]})"));
  BOOST_TEST(relay.stage == "smtp");
}

BOOST_AUTO_TEST_CASE(a_refusal_an_allow_list_skipped_never_decides) {
  test::PaddedReader reader;
  // The client is allow-listed past dnsbl's refusal, then the protocol denies relaying.
  Decision relay = decisionOf(*reader.read(
      R"({"type":"transaction","action":"reject","reply":"554 5.7.1 <x@y.example>: Relay access denied","reason":"reset","stages":[{"stage":"dnsbl","verdict":"reject","reason":"listed","reply":"554 5.7.1 Listed","allowed_by":"client 192.0.2.0/24"}]})"));
  BOOST_TEST(relay.stage == "smtp");
  BOOST_TEST(relay.reason == "reset");
}

BOOST_AUTO_TEST_CASE(the_downstream_decided_its_own_reply) {
  test::PaddedReader reader;
  Decision decision = decisionOf(*reader.read(test::downstream_line));
  BOOST_TEST(decision.stage == "downstream");
  BOOST_TEST(decision.reason == "downstream: timed out");
}

BOOST_AUTO_TEST_CASE(the_protocol_decided_the_rest) {
  test::PaddedReader reader;
  Decision relay = decisionOf(*reader.read(test::relay_denied_line));
  BOOST_TEST(relay.stage == "smtp");
  BOOST_TEST(relay.reason == "reset");
  Decision command = decisionOf(*reader.read(test::command_line));
  BOOST_TEST(command.stage == "smtp");
  BOOST_TEST(command.reason == "command FOO");
  Decision connection = decisionOf(*reader.read(test::connection_line));
  BOOST_TEST(connection.stage == "smtp");
  BOOST_TEST(connection.reason == "too many connections from this client");
}

BOOST_AUTO_TEST_CASE(a_session_record_names_its_refusing_stage) {
  test::PaddedReader reader;
  Decision decision = decisionOf(*reader.read(test::session_line));
  BOOST_TEST(decision.stage == "helo_check");
  BOOST_TEST(decision.reason == "helo is an IP literal");
}

BOOST_AUTO_TEST_CASE(a_session_without_a_transaction_says_so) {
  test::PaddedReader reader;
  Decision decision = decisionOf(*reader.read(
      R"({"type":"session","action":"none","reason":"quit","helo":"lb.example","stages":[{"stage":"dnsbl","phase":"connect","verdict":"continue","reason":"not listed"}]})"));
  BOOST_TEST(decision.stage == "smtp");
  BOOST_TEST(decision.reason == "no transaction: quit");
}

BOOST_AUTO_TEST_CASE(an_overflow_record_is_the_logs_own) {
  test::PaddedReader reader;
  Decision decision = decisionOf(*reader.read(test::overflow_line));
  BOOST_TEST(decision.stage == "log");
  BOOST_TEST(decision.reason == "12 records dropped (40 since start)");
}

BOOST_AUTO_TEST_CASE(a_recipient_refused_at_rcpt_did_not_refuse_the_message) {
  // dnsbl refused one recipient at RCPT; the other went on, and the downstream refused the message.
  test::PaddedReader reader;
  Decision decision = decisionOf(*reader.read(
      R"({"type":"transaction","action":"reject","reply":"554 5.6.0 Bad content","downstream_reply":"554 5.6.0 Bad content","stages":[{"stage":"dnsbl","verdict":"reject","reason":"listed","reply":"554 5.7.1 Listed"}]})"));
  BOOST_TEST(decision.stage == "downstream");
  // Accepted mail: the downstream's 250 is the reply.
  Decision accepted = decisionOf(*reader.read(
      R"({"type":"transaction","action":"accept","reply":"250 2.0.0 Ok","downstream_reply":"250 2.0.0 Ok","stages":[{"stage":"spf","verdict":"continue","reason":"pass"}]})"));
  BOOST_TEST(accepted.stage == "downstream");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
