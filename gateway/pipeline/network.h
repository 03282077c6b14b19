#pragma once
// Byte streams to network peers for stages that talk to a service for each message (clamd): the
// host runs them on the session's event loop, so a stage waiting for its peer holds no thread
// (the thread pool is for CPU work). Every callback runs on that loop. When the session ends, the
// host closes every stream it opened for it and calls none of their callbacks again.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace mailgate {

class StreamConnection {
 public:
  virtual ~StreamConnection() = default;
  // Queues bytes to send, in order; `written` (if any) runs once they have all left. Once the
  // peer has stopped reading, bytes are dropped and `written` never runs: what the peer answered
  // before it closed still arrives, then `closed`.
  virtual void write(std::string bytes, std::move_only_function<void()> written = {}) = 0;
  // Closes the stream; no callback runs after this.
  virtual void close() = 0;
};

struct StreamCallbacks {
  // Once: an empty string when connected, else why the connection could not be made.
  std::move_only_function<void(std::string_view error)> connected;
  std::move_only_function<void(std::string_view bytes)> received;
  // Once, when the peer closed the stream or it failed (never after close()).
  std::move_only_function<void(std::string_view why)> closed;
};

class NetworkAccess {
 public:
  virtual ~NetworkAccess() = default;
  // `endpoint` is a unix socket path ("/run/clamav/clamd.ctl") or an IP literal with a port
  // ("127.0.0.1:3310", "[::1]:3310"). The connect attempt gives up after `connect_timeout_ms`.
  virtual std::shared_ptr<StreamConnection> connect(std::string_view endpoint, StreamCallbacks callbacks,
                                                    uint64_t connect_timeout_ms) = 0;
};

}  // namespace mailgate
