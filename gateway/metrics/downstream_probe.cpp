#include "gateway/metrics/downstream_probe.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>

#include "gateway/util/c_free.h"
#include "gateway/util/file_descriptor.h"

namespace mailgate {
namespace {

using AddressList = std::unique_ptr<addrinfo, CFree<&freeaddrinfo>>;

int remainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

bool waitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  pollfd entry{fd, events, 0};
  int ready;
  do ready = ::poll(&entry, 1, remainingMs(deadline));
  while (ready < 0 && errno == EINTR);
  return ready > 0;
}

// RFC 5321 §4.2.1: "220-..." lines continue a reply; "220 ..." (or "220") ends it.
std::size_t finalLineStart(const std::string& text) {
  std::size_t at = 0;
  while (true) {
    std::size_t end = text.find("\r\n", at);
    if (end == std::string::npos) return std::string::npos;
    if (end - at < 4 || text[at + 3] != '-') return at;
    at = end + 2;
  }
}

bool hasFinalLine(const std::string& text) { return finalLineStart(text) != std::string::npos; }

}  // namespace

bool DownstreamProbe::ready() {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  if (!checked_once_ || now - checked_ >= readiness_cache_time) {
    problem_ = probe();
    checked_ = std::chrono::steady_clock::now();
    checked_once_ = true;
  }
  return problem_.empty();
}

std::string DownstreamProbe::lastProblem() {
  std::lock_guard lock(mutex_);
  return problem_;
}

std::string DownstreamProbe::probe() {
  auto deadline = std::chrono::steady_clock::now() + readiness_probe_timeout;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = std::to_string(downstream_.port);
  if (int error = ::getaddrinfo(downstream_.host.c_str(), port.c_str(), &hints, &found); error != 0)
    return downstream_.text() + ": " + gai_strerror(error);
  AddressList addresses(found);
  std::string problem = downstream_.text() + ": no address";
  for (addrinfo* address = addresses.get(); address != nullptr; address = address->ai_next) {
    FileDescriptor socket(::socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (socket.get() < 0) continue;
    if (::connect(socket.get(), address->ai_addr, address->ai_addrlen) != 0 && errno != EINPROGRESS) {
      problem = downstream_.text() + ": " + std::strerror(errno);
      continue;
    }
    if (!waitFor(socket.get(), POLLOUT, deadline)) return downstream_.text() + ": connect timed out";
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      problem = downstream_.text() + ": " + std::strerror(error);
      continue;
    }
    // The greeting's last line ("220 ..." after any "220-..." lines) says whether it serves.
    std::string greeting;
    while (!hasFinalLine(greeting)) {
      if (!waitFor(socket.get(), POLLIN, deadline)) return downstream_.text() + ": no greeting in time";
      char buffer[512];
      ssize_t got = ::read(socket.get(), buffer, sizeof buffer);
      if (got <= 0) return downstream_.text() + ": closed before its greeting";
      greeting.append(buffer, static_cast<std::size_t>(got));
      if (greeting.size() > 4096) return downstream_.text() + ": greeting too long";
    }
    greeting = greeting.substr(finalLineStart(greeting));
    static constexpr char quit[] = "QUIT\r\n";
    [[maybe_unused]] ssize_t sent = ::send(socket.get(), quit, sizeof quit - 1, MSG_NOSIGNAL);
    if (greeting.starts_with("220")) return {};
    return downstream_.text() + ": greeting " + greeting.substr(0, greeting.find('\r'));
  }
  return problem;
}

}  // namespace mailgate
