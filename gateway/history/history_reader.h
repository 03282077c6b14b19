#pragma once
// Searches the decision history (history_database.h) with `mailgate log`'s filter: the indexes
// narrow the rows (time, action, client network, sender and recipient addresses or domains,
// Message-ID, deciding stage, rules, and LIKE for subject and words), then RecordFilter checks each
// record found exactly as it does a log line, so the history and the files answer alike.

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/c/sqlite.h"
#include "gateway/logtool/log_record.h"
#include "gateway/logtool/record_filter.h"

namespace mailgate {

struct HistoryScan {
  bool newest_first = false;
  std::optional<int64_t> before_id;  // only decisions older than this one (paging back)
  std::optional<int64_t> after_id;   // only decisions newer than this one (paging forward)
};

class HistoryReader {
 public:
  // Read-only; fails when the file does not exist or is no history.
  static std::expected<HistoryReader, std::string> open(const std::string& path);

  // Calls `found` with each matching decision (its id and record line) in the scan's order, until
  // it returns false. Not thread-safe: one reader per thread.
  using Found = std::function<bool(int64_t id, std::string_view line, const logtool::LogRecord& record)>;
  std::expected<void, std::string> scan(const logtool::RecordFilter& filter, const HistoryScan& order, const Found& found);

  // One decision's record line; nullopt when there is none with that id (any more).
  std::optional<std::string> record(int64_t id);

  // Decisions stored, and the times of the oldest and newest (0 when empty).
  struct Extent {
    int64_t decisions = 0, oldest_ms = 0, newest_ms = 0;
  };
  Extent extent();

 private:
  explicit HistoryReader(SqliteDatabase db) : db_(std::move(db)) {}
  SqliteDatabase db_;
};

}  // namespace mailgate
