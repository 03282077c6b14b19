#include "gateway/log/decision_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

namespace mailgate {

std::expected<std::shared_ptr<DecisionLog>, std::string> DecisionLog::open(const std::string& path) {
  if (path == "-") return std::shared_ptr<DecisionLog>(new DecisionLog(path, STDOUT_FILENO, false));
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return std::unexpected("cannot open decision log " + path + ": " + std::strerror(errno));
  return std::shared_ptr<DecisionLog>(new DecisionLog(path, fd, true));
}

DecisionLog::~DecisionLog() {
  if (owned_) ::close(fd_);
}

void DecisionLog::write(const nlohmann::json& record) {
  // Invalid UTF-8 from a client (HELO, addresses) must not make the record unwritable.
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  std::lock_guard lock(mutex_);
  const char* data = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t written = ::write(fd_, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      return;  // a full disk must not stop mail; the transaction itself is already decided
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
}

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
