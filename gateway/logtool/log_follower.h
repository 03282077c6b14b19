#pragma once
// --follow: reads what is appended to a log as `tail -F` does, polling, and reopens the path when
// the file was rotated (renamed and created anew, as logrotate does before it sends the gateway
// SIGUSR1) or truncated in place (copytruncate).

#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <string_view>

#include "gateway/logtool/log_inputs.h"

namespace mailgate::logtool {

class LogFollower {
 public:
  // How long an idle log waits before it is read again: new records show within this, and an
  // idle follower costs five stat(2) and read(2) calls a second.
  static constexpr std::chrono::milliseconds poll_interval{200};

  // `log`: the file as read so far (to its end), or nothing when it could not be opened yet.
  LogFollower(std::string path, std::optional<OpenLog> log);

  using LineHandler = std::function<void(std::string_view line)>;
  // Hands every new whole line to `line`, calls `idle` when it has caught up (to flush output),
  // and returns when `stop` is set (by a signal handler). Errors go to standard error.
  void run(const LineHandler& line, const std::function<void()>& idle, const volatile std::sig_atomic_t& stop);
  // Lines skipped for their length (LineReader::max_line_octets) while following.
  std::size_t oversized() const { return oversized_ + (log_ ? log_->lines->oversized() - oversized_at_open_ : 0); }

 private:
  // Reads what is there; false after an error (reported).
  bool drain(const LineHandler& line);
  // The file at path_ is not the one open (rotated), or is shorter than what was read
  // (truncated): switch to it.
  void checkRotation(const LineHandler& line);

  std::string path_;
  std::optional<OpenLog> log_;
  std::size_t oversized_ = 0;          // in files no longer open
  std::size_t oversized_at_open_ = 0;  // what the open file's reader had counted when following began
};

}  // namespace mailgate::logtool
