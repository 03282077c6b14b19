#include "gateway/log/decision_log.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>

#include "gateway/util/file_descriptor.h"

namespace mailgate {
namespace {

// The log's descriptor: a file it owns, or standard output, which it does not.
struct LogFile {
  FileDescriptor owned{-1};
  int fd = STDOUT_FILENO;
};

std::expected<LogFile, std::string> openLogFile(const std::string& path) {
  if (path == "-") return LogFile{};
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return std::unexpected("cannot open decision log " + path + ": " + std::strerror(errno));
  return LogFile{FileDescriptor(fd), fd};
}

uint64_t linesIn(std::string_view text) { return static_cast<uint64_t>(std::ranges::count(text, '\n')); }

}  // namespace

struct DecisionLog::Writer {
  Writer(std::string file_path, LogFile log_file) : path(std::move(file_path)), file(std::move(log_file)) {}

  void run();
  // Writes whole lines; returns how many did not reach the file (a write error).
  uint64_t writeLines(std::string_view lines);
  void reopenAt(const std::string& new_path);

  std::mutex mutex;
  std::condition_variable wake;      // for the writer: lines, a reopen, or stop
  std::condition_variable finished;  // for stop(): the writer is done
  // Guarded by mutex.
  std::string queue;                       // whole lines, in the order write() was called
  uint64_t unreported_drops = 0;           // dropped since the writer last took the queue
  uint64_t lines_in_flight = 0;            // in the batch the writer is writing
  std::optional<std::string> reopen_path;  // a reopen() waiting for the writer
  bool stopping = false;
  bool done = false;

  std::atomic<uint64_t> dropped{0};

  // The writer thread's own.
  std::string path;
  LogFile file;
  uint64_t unlogged_drops = 0;  // dropped and not yet told in a log_overflow record
  bool failing = false;         // the last write failed (reported once per streak)
};

void DecisionLog::Writer::run() {
  std::unique_lock lock(mutex);
  while (true) {
    wake.wait(lock, [&] { return !queue.empty() || reopen_path || stopping; });
    std::string batch;
    batch.swap(queue);
    lines_in_flight = linesIn(batch);
    // Every record dropped so far was refused after the whole batch was queued (a full queue
    // takes nothing until it is taken here), so the overflow record goes after the batch.
    uint64_t drops = std::exchange(unreported_drops, 0);
    std::optional<std::string> reopen = std::exchange(reopen_path, std::nullopt);
    lock.unlock();

    uint64_t lost = writeLines(batch);
    dropped += lost;
    unlogged_drops += drops + lost;
    if (unlogged_drops > 0) {
      nlohmann::json overflow = {{"time", timestamp()},
                                 {"type", "log_overflow"},
                                 {"dropped", unlogged_drops},
                                 {"dropped_total", dropped.load()}};
      if (writeLines(overflow.dump() + '\n') == 0) unlogged_drops = 0;
    }
    // After the batch: what was queued before the signal belongs to the old file.
    if (reopen) reopenAt(*reopen);

    lock.lock();
    lines_in_flight = 0;
    if (stopping && queue.empty() && !reopen_path) {
      done = true;
      finished.notify_all();
      return;
    }
  }
}

uint64_t DecisionLog::Writer::writeLines(std::string_view lines) {
  std::string_view left = lines;
  while (!left.empty()) {
    ssize_t written = ::write(file.fd, left.data(), left.size());
    if (written >= 0) {
      left.remove_prefix(static_cast<std::size_t>(written));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      // Standard output may be a non-blocking pipe (its O_NONBLOCK is shared with whoever set
      // it); this thread may wait for it, a loop never does.
      pollfd ready{file.fd, POLLOUT, 0};
      ::poll(&ready, 1, -1);
      continue;
    }
    // A full disk or a closed pipe must not stop mail; the transactions are already decided.
    if (!failing)
      std::fprintf(stderr, "mailgate: decision log %s: write failed: %s (records are counted as dropped)\n",
                   path.c_str(), std::strerror(errno));
    failing = true;
    return linesIn(left);
  }
  failing = false;
  return 0;
}

void DecisionLog::Writer::reopenAt(const std::string& new_path) {
  auto opened = openLogFile(new_path);
  if (!opened) {
    std::fprintf(stderr, "mailgate: %s; still writing to the file open before\n", opened.error().c_str());
    return;
  }
  file = std::move(*opened);
  path = new_path;
  failing = false;
}

std::expected<std::shared_ptr<DecisionLog>, std::string> DecisionLog::open(const std::string& path) {
  auto file = openLogFile(path);
  if (!file) return std::unexpected(file.error());
  return std::shared_ptr<DecisionLog>(new DecisionLog(path, std::make_shared<Writer>(path, std::move(*file))));
}

DecisionLog::DecisionLog(std::string path, std::shared_ptr<Writer> writer)
    : path_(std::move(path)), writer_(std::move(writer)) {
  thread_ = std::thread([writer = writer_] { writer->run(); });
}

DecisionLog::~DecisionLog() { stop(exit_drain_bound); }

void DecisionLog::write(const nlohmann::json& record) {
  // Invalid UTF-8 from a client (HELO, addresses) must not make the record unwritable.
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (tap_) tap_->take(line);
  line += '\n';
  Writer& writer = *writer_;
  bool was_empty = false;
  {
    std::lock_guard lock(writer.mutex);
    if (writer.stopping || writer.queue.size() + line.size() > queue_limit_octets) {
      ++writer.unreported_drops;
      ++writer.dropped;
      return;
    }
    was_empty = writer.queue.empty();
    writer.queue += line;
  }
  if (was_empty) writer.wake.notify_one();
}

void DecisionLog::reopen(const std::string& path) {
  path_ = path;
  {
    std::lock_guard lock(writer_->mutex);
    writer_->reopen_path = path;
  }
  writer_->wake.notify_one();
}

void DecisionLog::stop(std::chrono::milliseconds bound) {
  if (!thread_.joinable()) return;
  Writer& writer = *writer_;
  std::unique_lock lock(writer.mutex);
  writer.stopping = true;
  writer.wake.notify_one();
  if (writer.finished.wait_for(lock, bound, [&] { return writer.done; })) {
    lock.unlock();
    thread_.join();
    return;
  }
  // The log is stuck in write(2): what it still holds is lost, counted, and the thread is left
  // to the exit of the process (it owns the writer state it uses).
  uint64_t lost = linesIn(writer.queue) + writer.lines_in_flight;
  writer.queue.clear();
  writer.lines_in_flight = 0;
  writer.dropped += lost;
  lock.unlock();
  thread_.detach();
}

uint64_t DecisionLog::dropped() const { return writer_->dropped.load(); }

std::string DecisionLog::timestamp() {
  auto now = std::chrono::system_clock::now();
  auto seconds = std::chrono::system_clock::to_time_t(now);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(millis));
  return text;
}

}  // namespace mailgate
