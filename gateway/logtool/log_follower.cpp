#include "gateway/logtool/log_follower.h"

#include <sys/stat.h>

#include <cstdio>
#include <ctime>

namespace mailgate::logtool {

LogFollower::LogFollower(std::string path, std::optional<OpenLog> log)
    : path_(std::move(path)), log_(std::move(log)), oversized_at_open_(log_ ? log_->lines->oversized() : 0) {}

bool LogFollower::drain(const LineHandler& line) {
  if (!log_) return true;
  while (true) {
    auto next = log_->lines->next();
    if (!next) {
      std::fprintf(stderr, "mailgate log: %s\n", next.error().c_str());
      return false;
    }
    if (!*next) return true;
    line(**next);
  }
}

void LogFollower::checkRotation(const LineHandler& line) {
  struct stat at_path{};
  if (::stat(path_.c_str(), &at_path) != 0) return;  // renamed, not yet created anew: wait
  if (log_) {
    struct stat open_file{};
    if (::fstat(log_->stream->fd(), &open_file) != 0) return;
    if (open_file.st_ino == at_path.st_ino && open_file.st_dev == at_path.st_dev) {
      if (at_path.st_size < log_->stream->offset()) {
        log_->stream->rewind();
        log_->lines->clear();
      }
      return;
    }
    // Rotated: what the gateway wrote to the old file before it reopened is read first; a last
    // line the old file never finished is what it is (malformed, most likely).
    drain(line);
    if (auto rest = log_->lines->unterminated()) line(*rest);
    oversized_ = oversized();
    oversized_at_open_ = 0;
  }
  auto reopened = OpenLog::open(path_);
  if (reopened) log_ = std::move(*reopened);
  else log_.reset();
}

void LogFollower::run(const LineHandler& line, const std::function<void()>& idle, const volatile std::sig_atomic_t& stop) {
  if (log_ && log_->stream->compressed()) {
    std::fprintf(stderr, "mailgate log: %s is compressed: it was read once, not followed\n", path_.c_str());
    return;
  }
  while (!stop) {
    if (!drain(line)) return;
    checkRotation(line);
    if (!drain(line)) return;
    idle();
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(poll_interval);
    timespec pause{static_cast<time_t>(seconds.count()),
                   static_cast<long>(std::chrono::nanoseconds(poll_interval - seconds).count())};
    nanosleep(&pause, nullptr);  // a signal cuts it short
  }
}

}  // namespace mailgate::logtool
