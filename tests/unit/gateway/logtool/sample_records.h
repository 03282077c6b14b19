#pragma once
// Decision-log lines as the gateway writes them (keys sorted, as nlohmann-json dumps them), one of
// every kind, for the logtool tests; and a reader that gives lines the padding RecordReader needs.

#include <string>
#include <string_view>

#include "gateway/logtool/log_record.h"

namespace mailgate::logtool::test {

// Tagged by rules (hit scores as strings, as rules_stage writes them), relayed, downstream 250.
inline constexpr std::string_view tagged_line =
    R"json({"action":"tag","client":{"ip":"192.0.2.7","port":40384},"declared_size":62,"downstream_reply":"250 2.0.0 Ok: queued as 4F1","durations":{"downstream_ms":15.3,"total_ms":32.2},"helo":"mail.sender.example","message_id":"<abc@sender.example>","recipients":[{"action":"accept","address":"Alice@Example.org","reply":"250 2.1.5 Ok"},{"action":"accept","address":"bob@example.org","reply":"250 2.1.5 Ok"}],"reply":"250 2.0.0 Ok: queued as 4F1","score":2.8,"sender":"news@Mail.Sender.example","session":"6B16","size":62,"stages":[{"ms":0.008,"phase":"mail","reason":"","stage":"size_limit","verdict":"continue"},{"hits":[{"description":"No Date","rule":"MG_DATE_MISSING","score":"1.2"},{"description":"Drugs","rule":"MG_PHARMA_DRUGS","score":0.8}],"ms":8.4,"phase":"data","reason":"score 2.8 (MG_DATE_MISSING,MG_PHARMA_DRUGS)","score":"2.8","stage":"rules","tag_score":"0.1","verdict":"tag"}],"subject":"Cheap Pills Today","time":"2026-12-07T14:05:09.608Z","tls":false,"transaction":"6B16.1","type":"transaction"})json";

// Refused at end of DATA by rules, after a shadow spf stage that would have refused.
inline constexpr std::string_view rejected_line =
    R"json({"action":"reject","client":{"ip":"2001:db8:5:1::9","port":5000},"downstream_reply":"","helo":"x","recipients":[{"action":"accept","address":"carol@example.org","reply":"250 2.1.5 Ok"}],"reply":"550 5.7.1 Message rejected as spam","score":17.5,"sender":"","session":"7A","size":900,"stages":[{"ms":1.0,"phase":"rcpt","reason":"fail","reply":"550 5.7.23 SPF validation failed","shadow":true,"stage":"spf","verdict":"reject"},{"hits":[{"description":"x","rule":"MG_PHARMA_DRUGS","score":"15"}],"ms":2.0,"phase":"data","reason":"score 17.5","reply":"550 5.7.1 Message rejected as spam","score":17.5,"stage":"rules","verdict":"reject"}],"time":"2026-12-07T15:00:00.000Z","tls":true,"transaction":"7A.1","type":"transaction"})json";

// The downstream deferred the message.
inline constexpr std::string_view downstream_line =
    R"json({"action":"tempfail","client":{"ip":"198.51.100.20","port":1},"downstream_reply":"451 4.4.1 Try later","helo":"y","reason":"downstream: timed out","recipients":[{"action":"accept","address":"dave@example.org","reply":"250 2.1.5 Ok"}],"reply":"451 4.4.1 Try later","sender":"a@b.example","session":"8C","size":10,"stages":[],"time":"2026-12-07T15:59:59.999Z","tls":false,"transaction":"8C.1","type":"transaction"})json";

// Every recipient refused at RCPT by the protocol (relay denied).
inline constexpr std::string_view relay_denied_line =
    R"json({"action":"reject","client":{"ip":"198.51.100.21","port":1},"downstream_reply":"","helo":"y","reason":"reset","recipients":[{"action":"reject","address":"x@other.org","reply":"554 5.7.1 <x@other.org>: Relay access denied"}],"reply":"554 5.7.1 <x@other.org>: Relay access denied","sender":"a@b.example","session":"8D","size":0,"stages":[{"ms":0.001,"phase":"mail","reason":"","stage":"size_limit","verdict":"continue"}],"time":"2026-12-07T16:00:00.000Z","tls":false,"transaction":"8D.1","type":"transaction"})json";

inline constexpr std::string_view command_line =
    R"json({"action":"reject","client":{"ip":"203.0.113.5","port":2},"command":"FOO","helo":"z","reply":"500 5.5.2 Error: command not recognized","session":"9E","time":"2026-12-07T16:10:00.000Z","tls":false,"type":"command"})json";

inline constexpr std::string_view connection_line =
    R"json({"action":"tempfail","client":{"ip":"203.0.113.6","port":3},"helo":"","reason":"too many connections from this client","reply":"421 4.7.0 Too many connections","session":"9F","time":"2026-12-07T16:11:00.000Z","tls":false,"type":"connection"})json";

// A session refused at HELO by a (future) helo stage, with no transaction.
inline constexpr std::string_view session_line =
    R"json({"action":"reject","client":{"ip":"203.0.113.7","port":4},"helo":"bad.helo","reason":"client quit","reply":"550 5.7.1 Bad HELO","session":"A0","stages":[{"ms":0.1,"phase":"helo","reason":"helo is an IP literal","reply":"550 5.7.1 Bad HELO","stage":"helo_check","verdict":"reject"}],"time":"2026-12-07T16:12:00.000Z","tls":false,"type":"session"})json";

inline constexpr std::string_view overflow_line =
    R"json({"dropped":12,"dropped_total":40,"time":"2026-12-07T16:13:00.000Z","type":"log_overflow"})json";

// Holds a line with the padding after it that RecordReader::read needs.
class PaddedReader {
 public:
  const LogRecord* read(std::string_view line) {
    buffer_.assign(line);
    buffer_.append(RecordReader::padding_octets, ' ');
    return reader_.read(std::string_view(buffer_.data(), line.size()));
  }

 private:
  RecordReader reader_;
  std::string buffer_;
};

}  // namespace mailgate::logtool::test
