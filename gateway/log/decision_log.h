#pragma once
// The decision log: one JSON object per line for every transaction, refused command and refused
// connection (design.md §3 "Logs").
//
// Event loops never write to the log themselves: write() appends the line to a bounded queue and
// returns, and one writer thread drains the queue with write(2). A log that cannot be written (a
// pipe nobody reads, a stuck disk) once froze every loop behind a write under a mutex; now it only
// fills the queue, and what does not fit is counted (dropped()), reported on standard error by the
// server and as a {"type":"log_overflow"} record once the log takes records again. Mail never
// waits for the log. One thread writes, whole lines only, so records are never split or
// interleaved, also across a reopen().

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace mailgate {

// Something else that keeps every record (the decision history): given each record's line on the
// thread that wrote it, so it must queue and return, never wait.
class RecordTap {
 public:
  virtual ~RecordTap() = default;
  virtual void take(std::string_view line) = 0;
};

class DecisionLog {
 public:
  // Records waiting for the writer: what absorbs a log that is slow for a while (a busy disk, a
  // log shipper that pauses reading its pipe). At ~0.8 KiB a record, 8 MiB is about 10,000
  // records, ten seconds of a very busy gateway; a log stuck longer than that must not take the
  // memory of the process with it. The batch being written holds at most as much again.
  static constexpr std::size_t queue_limit_octets = 8 * 1024 * 1024;
  // At exit, the writer gets this long to write what is still queued; a log that is stuck then
  // loses the rest (counted and reported), or the process could never exit.
  static constexpr std::chrono::milliseconds exit_drain_bound{5000};

  // "-" writes to standard output; anything else is a file opened for appending (created 0640).
  static std::expected<std::shared_ptr<DecisionLog>, std::string> open(const std::string& path);
  ~DecisionLog();
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // Thread-safe and never blocks on I/O: the record is queued, or counted in dropped().
  void write(const nlohmann::json& record);
  // Every record written from now on also goes to `tap`. Set before the event loops start.
  void setTap(std::shared_ptr<RecordTap> tap) { tap_ = std::move(tap); }
  // Thread-safe: the writer opens `path` anew (log rotation; "-" is standard output) after the
  // records queued so far, which go to the old file. An error keeps the old file and is reported
  // on standard error.
  // Call from one thread (the server's signal handling); path() then names the new file.
  void reopen(const std::string& path);
  void reopen() { reopen(path_); }
  // Writes what is queued (for at most `bound`) and stops the writer. Records written afterwards
  // are dropped (counted). Idempotent; the destructor calls it with exit_drain_bound.
  void stop(std::chrono::milliseconds bound);

  // Records that never reached the log since start: the queue was full, or write(2) failed.
  // Monotonic; what the overflow report and the metrics read.
  uint64_t dropped() const;
  const std::string& path() const { return path_; }

  // "2026-11-25T08:18:32.123Z"
  static std::string timestamp();

 private:
  struct Writer;
  DecisionLog(std::string path, std::shared_ptr<Writer> writer);

  std::string path_;
  std::shared_ptr<RecordTap> tap_;
  // Shared with the writer thread, which outlives this object when a stuck log is abandoned at
  // exit (a thread blocked in write(2) cannot be joined).
  std::shared_ptr<Writer> writer_;
  std::thread thread_;
};

}  // namespace mailgate
