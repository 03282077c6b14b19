#include "gateway/logtool/log_record.h"

#include <boost/test/unit_test.hpp>

#include "sample_records.h"

namespace mailgate::logtool {
namespace {

using test::PaddedReader;

BOOST_AUTO_TEST_SUITE(logtool_log_record)

BOOST_AUTO_TEST_CASE(a_transaction_record_reads_whole) {
  PaddedReader reader;
  const LogRecord* record = reader.read(test::tagged_line);
  BOOST_REQUIRE(record != nullptr);
  BOOST_TEST(record->line == test::tagged_line);
  BOOST_TEST(record->type == "transaction");
  BOOST_TEST(record->time == "2026-12-07T14:05:09.608Z");
  BOOST_TEST(*record->time_ms == 1796601600LL * 1000 + (14 * 3600 + 5 * 60 + 9) * 1000 + 608);
  BOOST_TEST(record->client_ip == "192.0.2.7");
  BOOST_TEST(record->helo == "mail.sender.example");
  BOOST_TEST(record->has_sender);
  BOOST_TEST(record->sender == "news@Mail.Sender.example");
  BOOST_REQUIRE(record->recipients.size() == 2u);
  BOOST_TEST(record->recipients[0].address == "Alice@Example.org");
  BOOST_TEST(record->recipients[1].reply == "250 2.1.5 Ok");
  BOOST_TEST(record->action == "tag");
  BOOST_TEST(record->reply == "250 2.0.0 Ok: queued as 4F1");
  BOOST_TEST(record->downstream_reply == "250 2.0.0 Ok: queued as 4F1");
  BOOST_TEST(record->subject == "Cheap Pills Today");
  BOOST_TEST(record->message_id == "<abc@sender.example>");
  BOOST_REQUIRE(record->stages.size() == 2u);
  BOOST_TEST(record->stages[1].name == "rules");
  BOOST_TEST(record->stages[1].verdict == "tag");
  BOOST_TEST(record->stages[1].reason == "score 2.8 (MG_DATE_MISSING,MG_PHARMA_DRUGS)");
  // Hit scores as a string and as a number both read: only the rule names are kept.
  BOOST_REQUIRE(record->rules.size() == 2u);
  BOOST_TEST(record->rules[0] == "MG_DATE_MISSING");
  BOOST_TEST(record->rules[1] == "MG_PHARMA_DRUGS");
}

BOOST_AUTO_TEST_CASE(the_reader_forgets_the_previous_record) {
  PaddedReader reader;
  BOOST_REQUIRE(reader.read(test::tagged_line) != nullptr);
  const LogRecord* record = reader.read(test::command_line);
  BOOST_REQUIRE(record != nullptr);
  BOOST_TEST(record->type == "command");
  BOOST_TEST(record->command == "FOO");
  BOOST_TEST(!record->has_sender);
  BOOST_TEST(record->recipients.empty());
  BOOST_TEST(record->stages.empty());
  BOOST_TEST(record->rules.empty());
  BOOST_TEST(record->subject.empty());
  BOOST_TEST(record->downstream_reply.empty());
}

BOOST_AUTO_TEST_CASE(every_kind_reads) {
  PaddedReader reader;
  const LogRecord* session = reader.read(test::session_line);
  BOOST_REQUIRE(session != nullptr);
  BOOST_TEST(session->type == "session");
  BOOST_TEST(session->stages.size() == 1u);
  BOOST_TEST(session->reason == "client quit");
  const LogRecord* connection = reader.read(test::connection_line);
  BOOST_REQUIRE(connection != nullptr);
  BOOST_TEST(connection->reason == "too many connections from this client");
  const LogRecord* overflow = reader.read(test::overflow_line);
  BOOST_REQUIRE(overflow != nullptr);
  BOOST_TEST(overflow->type == "log_overflow");
  BOOST_TEST(overflow->dropped == 12u);
  BOOST_TEST(overflow->dropped_total == 40u);
  const LogRecord* rejected = reader.read(test::rejected_line);
  BOOST_REQUIRE(rejected != nullptr);
  BOOST_TEST(rejected->has_sender);
  BOOST_TEST(rejected->sender.empty());
  BOOST_TEST(rejected->stages[0].shadow);
  BOOST_TEST(!rejected->stages[1].shadow);
}

BOOST_AUTO_TEST_CASE(malformed_lines_give_no_record) {
  PaddedReader reader;
  std::string cut(test::tagged_line.substr(0, 200));
  for (std::string_view line : {std::string_view(cut), std::string_view("not json at all"), std::string_view("[1,2]"),
                                std::string_view("{}"), std::string_view(R"({"type":7})"),
                                std::string_view(R"({"type":"transaction"} trailing)"),
                                std::string_view("{\"type\":\"transaction\",\"sender\":\"\xff\"}")})
    BOOST_TEST(reader.read(line) == nullptr, line);
}

BOOST_AUTO_TEST_CASE(fields_of_an_unexpected_type_read_as_absent) {
  PaddedReader reader;
  const LogRecord* record = reader.read(
      R"({"type":"transaction","sender":null,"recipients":"x","stages":[1,{"stage":"a","hits":[{"rule":5},"y"]}],"client":[],"time":12,"future_field":{"a":[1]}})");
  BOOST_REQUIRE(record != nullptr);
  BOOST_TEST(!record->has_sender);
  BOOST_TEST(record->recipients.empty());
  BOOST_TEST(record->stages.size() == 1u);
  BOOST_TEST(record->rules.size() == 1u);
  BOOST_TEST(record->rules[0].empty());
  BOOST_TEST(record->client_ip.empty());
  BOOST_TEST(!record->time_ms.has_value());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
