#pragma once
// One event loop on its own thread, with its own listening socket for each listen address
// (SO_REUSEPORT lets the kernel spread connections over the workers), and the client connections
// it accepted. Other threads talk to it only through post().

#include <uv.h>

#include <array>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/net/shared_state.h"
#include "gateway/uv/thread_pool.h"
#include "gateway/relay/downstream_pool.h"

namespace mailgate {

class ClientConnection;

class Worker {
 public:
  static constexpr std::size_t read_buffer_octets = 64 * 1024;

  Worker(unsigned index, SharedState& shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens this worker's listening sockets; call before start(). Errors name the address.
  // `implicit_tls`: TLS from the first byte (RFC 8314), else plain SMTP with STARTTLS.
  std::expected<void, std::string> listen(const std::vector<HostPort>& addresses, bool implicit_tls = false);
  void start();
  // Thread-safe: stop accepting, let transactions in flight finish, close idle sessions with
  // 421 4.3.2, and after `bound` close the rest. The thread ends when nothing is left.
  void drain(Duration bound);
  void join();

  uv_loop_t* loop() { return &loop_; }
  SharedState& shared() { return shared_; }
  JobRunner& jobs() { return jobs_; }
  DownstreamPool& downstreams() { return downstreams_; }
  bool draining() const { return draining_; }
  unsigned index() const { return index_; }
  // One buffer for every read on this loop: a read callback consumes its bytes before the next
  // read is allocated, so connections need no buffer of their own.
  char* readBuffer() { return read_buffer_.data(); }

  void add(ClientConnection* connection) { connections_.insert(connection); }
  void remove(ClientConnection* connection) { connections_.erase(connection); }

 private:
  // A listening socket this worker accepts from itself (not uv_listen): when descriptors run out,
  // libuv 1.44's accept loop retries without end once its spare descriptor is gone (a busy loop
  // that serves no one), where this one pauses.
  struct Listener {
    uv_poll_t poll{};
    uv_timer_t pause{};  // while descriptors are short: accepting resumes when it fires
    int fd = -1;
    int open_handles = 0;
    Worker* worker = nullptr;
    bool implicit_tls = false;
    ~Listener();
  };
  static void closeListener(std::unique_ptr<Listener> listener);
  static void onListenerReadable(uv_poll_t* poll, int status, int events);
  void acceptPending(Listener& listener);
  // accept failed for want of a descriptor (EMFILE, ENFILE): the client waiting longest hears
  // 421 through the spare descriptor, and accepting pauses for a moment.
  void refuseForLackOfDescriptors(Listener& listener);
  void post(std::function<void()> task);
  void runPosted();
  void startDrain(Duration bound);
  void closeAll();

  unsigned index_;
  SharedState& shared_;
  uv_loop_t loop_{};
  uv_async_t wakeup_{};
  uv_timer_t drain_timer_{};
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::thread thread_;
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  bool wakeup_closed_ = false;  // guarded by posted_mutex_
  std::unordered_set<ClientConnection*> connections_;
  UvJobRunner jobs_{&loop_};
  DownstreamPool downstreams_{&loop_};
  bool draining_ = false;
  // Held open only to be closed when descriptors run out, so that a refused client can be
  // accepted and told 421 rather than left waiting in the listen queue.
  int spare_descriptor_ = -1;
  std::array<char, read_buffer_octets> read_buffer_{};
};

}  // namespace mailgate
