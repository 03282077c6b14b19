#pragma once
// One decision-log line read back (README "The decision log"; written by gateway/log/): the fields
// `mailgate log` filters on and shows. Every text is a view into the reader's parse buffers, valid
// until its next read(); the line itself stays as it was, for --json.

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "gateway/logtool/time_bound.h"

namespace simdjson::dom {
class parser;
}

namespace mailgate::logtool {

struct RecipientEntry {
  std::string_view address;
  std::string_view reply;
};

struct StageEntry {
  std::string_view name;     // "stage"
  std::string_view verdict;  // continue | tag | tempfail | reject
  std::string_view reason;
  std::string_view reply;
  bool shadow = false;   // the stage only said what it would have done
  bool allowed = false;  // "allowed_by": an allow-list entry skipped its refusal
};

struct LogRecord {
  std::string_view line;
  // transaction | command | connection | session | log_overflow, or a kind this reader predates
  std::string_view type;
  std::string_view time;
  std::optional<EpochMs> time_ms;
  std::string_view client_ip;
  std::string_view helo;
  bool has_sender = false;  // transaction records; "" is then the null sender
  std::string_view sender;
  std::vector<RecipientEntry> recipients;
  std::vector<StageEntry> stages;
  std::vector<std::string_view> rules;  // every stages[].hits[].rule, in order
  std::string_view action;              // accept | tag | tempfail | reject | abandoned | none
  std::string_view reply;
  std::string_view downstream_reply;
  std::string_view reason;
  std::string_view command;  // command records
  // Set by the gateway from issue 16 on; absent (empty) in older logs.
  std::string_view subject;
  std::string_view message_id;
  std::string_view queue_id;
  uint64_t dropped = 0;  // log_overflow records
  uint64_t dropped_total = 0;
};

// Reads lines into LogRecords. A line is malformed when it is not one JSON object with a string
// "type" (a line cut short by a crash, text from elsewhere, bytes that are not UTF-8); a field of
// an unexpected JSON type reads as absent, so a record from an older or newer gateway still reads
// (a score written as "2.8" or 2.8, a field this reader does not know).
class RecordReader {
 public:
  // The line must be followed by this many readable octets (LineReader leaves them): the parser
  // reads ahead in 64-octet blocks.
  static constexpr std::size_t padding_octets = 64;

  RecordReader();
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // nullptr when the line is malformed. The record is this reader's, overwritten by the next read.
  const LogRecord* read(std::string_view line);

 private:
  std::unique_ptr<simdjson::dom::parser> parser_;
  LogRecord record_;
};

}  // namespace mailgate::logtool
