#include "gateway/net/worker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gateway/net/client_connection.h"
#include "gateway/uv/uv_util.h"

namespace mailgate {
namespace {

// Connections the kernel may queue before accept (Postfix's default is 100; mail bursts).
constexpr int listen_backlog = 511;

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
}

std::expected<void, std::string> Worker::listen(const std::vector<HostPort>& addresses, bool implicit_tls) {
  for (const auto& address : addresses) {
    auto fd = openListeningSocket(address);
    if (!fd) return std::unexpected(fd.error());
    auto listener = std::make_unique<Listener>();
    listener->worker = this;
    listener->implicit_tls = implicit_tls;
    uv_tcp_init(&loop_, &listener->tcp);
    listener->tcp.data = listener.get();
    int status = uv_tcp_open(&listener->tcp, *fd);
    if (status == 0)
      status = uv_listen(reinterpret_cast<uv_stream_t*>(&listener->tcp), listen_backlog,
                         [](uv_stream_t* server, int accepted) {
                           if (accepted != 0) return;
                           auto* listener = static_cast<Listener*>(server->data);
                           ClientConnection::accept(*listener->worker, server, listener->implicit_tls);
                         });
    if (status != 0) {
      closeListener(std::move(listener));
      return std::unexpected(address.text() + ": listen: " + uv_strerror(status));
    }
    listeners_.push_back(std::move(listener));
  }
  return {};
}

void Worker::closeListener(std::unique_ptr<Listener> listener) {
  closeHandle(reinterpret_cast<uv_handle_t*>(&listener.release()->tcp),
           [](uv_handle_t* handle) { delete static_cast<Listener*>(handle->data); });
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
