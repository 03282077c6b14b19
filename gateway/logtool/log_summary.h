#pragma once
// --summary: what pflogsumm tells a Postfix operator, for the decision log. Counts are exact:
// every matching record is counted, nothing sampled.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gateway/logtool/decision.h"
#include "gateway/logtool/log_record.h"

namespace mailgate::logtool {

// Counts keyed by text, looked up without building a string for keys already seen.
struct TextHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using TextCounts = std::unordered_map<std::string, uint64_t, TextHash, std::equal_to<>>;

class LogSummary {
 public:
  void add(const LogRecord& record, const Decision& decision);
  // Adds the counts of a summary of later records (a worker's share of the log).
  void merge(const LogSummary& later);
  void setMalformed(uint64_t lines) { malformed_ = lines; }

  void printText(std::FILE* out, std::size_t top) const;
  std::string json(std::size_t top) const;  // one JSON object, for scripts (--summary --json)

  struct Refusal {
    uint64_t count = 0;
    std::string example;  // the first reply seen with this key
  };
  // The tallies, for the printers and the tests.
  uint64_t records() const { return records_; }
  const std::map<std::string, uint64_t, std::less<>>& types() const { return types_; }
  const std::map<std::string, uint64_t, std::less<>>& actions() const { return actions_; }
  const std::unordered_map<std::string, Refusal>& refusals() const { return refusals_; }
  TextCounts senderDomains() const;   // folded to lower case; "<>" for the null sender
  TextCounts clientNetworks() const;  // summaryNetworkOf()
  const TextCounts& rules() const { return rules_; }
  // "2026-12-07T14" → action → count
  const std::map<std::string, std::map<std::string, uint64_t, std::less<>>, std::less<>>& hours() const { return hours_; }
  uint64_t overflowRecords() const { return overflow_records_; }
  uint64_t droppedRecords() const { return dropped_; }

 private:
  uint64_t records_ = 0;
  std::map<std::string, uint64_t, std::less<>> types_;
  std::map<std::string, uint64_t, std::less<>> actions_;
  std::unordered_map<std::string, Refusal> refusals_;
  TextCounts sender_domains_;  // as written; folded when asked
  TextCounts client_ips_;      // grouped into networks when asked
  TextCounts rules_;
  std::map<std::string, std::map<std::string, uint64_t, std::less<>>, std::less<>> hours_;
  uint64_t overflow_records_ = 0;
  uint64_t dropped_ = 0;
  uint64_t malformed_ = 0;
};

// The key refusals are grouped by: the deciding stage and the reply's codes, "rules 550 5.7.1",
// since reply texts vary (they name addresses, queue ids).
std::string refusalKey(std::string_view stage, std::string_view reply);

}  // namespace mailgate::logtool
