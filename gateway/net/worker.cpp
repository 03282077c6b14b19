#include "gateway/net/worker.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gateway/net/client_connection.h"
#include "gateway/smtp/replies.h"
#include "gateway/uv/uv_util.h"

namespace mailgate {
namespace {

// Connections the kernel may queue before accept (Postfix's default is 100; mail bursts).
constexpr int listen_backlog = 511;
// Connections taken from the queue per wake-up: a burst of new clients is taken a slice at a time,
// between the reads of the sessions already open, rather than all before any of them.
constexpr int accepts_per_wakeup = 64;
// How long accepting pauses once descriptors have run out: long enough not to spin on EMFILE,
// short enough that a slot freed by a closing session is used soon.
constexpr uint64_t descriptor_shortage_pause_ms = 100;

int openSpareDescriptor() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

std::expected<int, std::string> openListeningSocket(const HostPort& address) {
  sockaddr_storage socket_address{};
  if (!socketAddress(address.host, address.port, socket_address))
    return std::unexpected(address.text() + ": not an IP address");
  int fd = ::socket(socket_address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(address.text() + ": socket: " + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Debian's libuv 1.44 has no flag for SO_REUSEPORT on Linux: set it here (design.md §3).
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    std::string error = std::strerror(errno);
    ::close(fd);
    return std::unexpected(address.text() + ": SO_REUSEPORT: " + error);
  }
  // "[::]" and "0.0.0.0" are separate listen entries; without V6ONLY they would collide.
  if (socket_address.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  socklen_t length = socket_address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&socket_address), length) != 0) {
    std::string error = std::strerror(errno);
    ::close(fd);
    return std::unexpected(address.text() + ": bind: " + error);
  }
  return fd;
}

}  // namespace

Worker::Worker(unsigned index, SharedState& shared) : index_(index), shared_(shared) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &wakeup_, [](uv_async_t* async) { static_cast<Worker*>(async->data)->runPosted(); });
  wakeup_.data = this;
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
  spare_descriptor_ = openSpareDescriptor();
}

Worker::Listener::~Listener() {
  if (fd >= 0) ::close(fd);
}

Worker::~Worker() {
  join();
  // Whatever is still open (a worker that never drained, the drain timer) is closed here so the
  // loop can be closed cleanly.
  uv_walk(&loop_, [](uv_handle_t* handle, void*) {
    if (!uv_is_closing(handle)) closeHandle(handle, nullptr);
  }, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  if (spare_descriptor_ >= 0) ::close(spare_descriptor_);
}

std::expected<void, std::string> Worker::listen(const std::vector<HostPort>& addresses, bool implicit_tls) {
  for (const auto& address : addresses) {
    auto fd = openListeningSocket(address);
    if (!fd) return std::unexpected(fd.error());
    if (::listen(*fd, listen_backlog) != 0) {
      std::string error = std::strerror(errno);
      ::close(*fd);
      return std::unexpected(address.text() + ": listen: " + error);
    }
    auto listener = std::make_unique<Listener>();
    listener->worker = this;
    listener->implicit_tls = implicit_tls;
    listener->fd = *fd;
    uv_poll_init_socket(&loop_, &listener->poll, *fd);
    uv_timer_init(&loop_, &listener->pause);
    listener->poll.data = listener->pause.data = listener.get();
    listener->open_handles = 2;
    uv_poll_start(&listener->poll, UV_READABLE, onListenerReadable);
    listeners_.push_back(std::move(listener));
  }
  return {};
}

void Worker::onListenerReadable(uv_poll_t* poll, int status, int) {
  if (status != 0) return;
  auto* listener = static_cast<Listener*>(poll->data);
  listener->worker->acceptPending(*listener);
}

void Worker::acceptPending(Listener& listener) {
  for (int taken = 0; taken < accepts_per_wakeup; ++taken) {
    int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      ClientConnection::accept(*this, fd, listener.implicit_tls);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) refuseForLackOfDescriptors(listener);
    // EAGAIN: the queue is empty. Anything else (a network error of a client that left, as
    // accept(2) says to treat them) waits for the next wake-up.
    return;
  }
}

void Worker::refuseForLackOfDescriptors(Listener& listener) {
  if (spare_descriptor_ >= 0) {
    ::close(spare_descriptor_);
    int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      // A fresh socket's send buffer takes one line whole; a client that cannot take it loses it.
      std::string refusal = replies::tooManyConnections().wire();
      [[maybe_unused]] ssize_t sent = ::send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
    }
    // Another thread may have taken the number meanwhile: then the next shortage only pauses.
    spare_descriptor_ = openSpareDescriptor();
  }
  shared_.descriptorsRanOut();
  uv_poll_stop(&listener.poll);
  uv_timer_start(&listener.pause, [](uv_timer_t* timer) {
    auto* listener = static_cast<Listener*>(timer->data);
    Worker& worker = *listener->worker;
    if (worker.spare_descriptor_ < 0) worker.spare_descriptor_ = openSpareDescriptor();
    uv_poll_start(&listener->poll, UV_READABLE, onListenerReadable);
  }, descriptor_shortage_pause_ms, 0);
}

void Worker::closeListener(std::unique_ptr<Listener> listener) {
  Listener* closing = listener.release();
  auto closed = [](uv_handle_t* handle) {
    auto* listener = static_cast<Listener*>(handle->data);
    if (--listener->open_handles == 0) delete listener;
  };
  // A poll handle does not close its descriptor: ~Listener does, with close(2), which
  // ThreadSanitizer sees (closeHandle's announcement is for descriptors libuv closes).
  uv_close(reinterpret_cast<uv_handle_t*>(&closing->poll), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&closing->pause), closed);
}

void Worker::start() {
  thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::post(std::function<void()> task) {
  std::lock_guard lock(posted_mutex_);
  if (wakeup_closed_) return;
  posted_.push_back(std::move(task));
  uv_async_send(&wakeup_);
}

void Worker::runPosted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(posted_mutex_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
}

void Worker::drain(Duration bound) {
  post([this, bound] { startDrain(bound); });
}

void Worker::startDrain(Duration bound) {
  if (draining_) return;
  draining_ = true;
  // Closing the listeners first: new connections are refused while the rest finish.
  for (auto& listener : listeners_) closeListener(std::move(listener));
  listeners_.clear();
  downstreams_.clear();
  std::vector<ClientConnection*> connections(connections_.begin(), connections_.end());
  for (auto* connection : connections) connection->drain();
  uv_timer_start(&drain_timer_, [](uv_timer_t* timer) { static_cast<Worker*>(timer->data)->closeAll(); },
                 static_cast<uint64_t>(bound.count()), 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&drain_timer_));
  // The loop ends once the last connection is gone; the async handle must not keep it alive.
  {
    std::lock_guard lock(posted_mutex_);
    wakeup_closed_ = true;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
}

void Worker::closeAll() {
  std::vector<ClientConnection*> connections(connections_.begin(), connections_.end());
  for (auto* connection : connections) connection->shutdown();
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
}

}  // namespace mailgate
