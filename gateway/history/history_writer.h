#pragma once
// Keeps every decision record in the history (history_database.h), off the event loops: take()
// queues the line and returns; one thread gathers records for up to a quarter of a second (or
// 2,000 of them) and stores each batch in one transaction,
// and deletes what is past the retention or the size bound. Like the log, the history never makes
// mail wait: what does not fit the queue is counted (dropped()) and left to the log file.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/c/sqlite.h"
#include "gateway/config/config.h"
#include "gateway/log/decision_log.h"

namespace mailgate {

class HistoryWriter final : public RecordTap {
 public:
  // As much as the decision log's queue: seconds of a very busy gateway.
  static constexpr std::size_t queue_limit_octets = 8 * 1024 * 1024;

  // Opens (creates) the file and starts the thread.
  static std::expected<std::shared_ptr<HistoryWriter>, std::string> start(const HistoryConfig& config);
  HistoryWriter(HistoryConfig config, SqliteDatabase db);
  ~HistoryWriter() override;
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;

  void take(std::string_view line) override;
  // Stores what is queued (for at most `bound`) and stops the thread; later records are dropped.
  void stop(std::chrono::milliseconds bound);

  uint64_t stored() const { return stored_.load(); }
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t deleted() const { return deleted_.load(); }

 private:
  void run();
  std::expected<void, std::string> store(const std::vector<std::string>& lines);
  std::expected<void, std::string> prepare();
  void enforceBounds();
  std::chrono::milliseconds sweepInterval() const;
  void deleteThrough(int64_t last_id);

  HistoryConfig config_;
  SqliteDatabase db_;
  SqliteStatement insert_decision_, insert_recipient_, insert_rule_;

  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::vector<std::string> queue_;  // guarded by mutex_
  std::size_t queued_octets_ = 0;   // guarded by mutex_
  bool busy_ = false;               // guarded by mutex_: a batch is being stored
  bool stopping_ = false;           // guarded by mutex_
  bool flushing_ = false;           // guarded by mutex_: stop() waits for what is queued

  std::atomic<uint64_t> stored_{0}, dropped_{0}, deleted_{0};
  std::chrono::steady_clock::time_point next_sweep_{};
  bool failing_ = false;  // the last batch failed (reported once per streak)
  std::thread thread_;    // started by start(), once the statements are prepared
};

}  // namespace mailgate
