#pragma once
// Idle downstream connections of one worker, kept between client sessions so that a new session
// skips the connect, greeting and EHLO round trips (Postfix's scache does the same). Lives on
// one loop; not thread-safe.

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/relay/downstream.h"
#include "gateway/tls/server_tls.h"

namespace mailgate {

class DownstreamPool {
 public:
  explicit DownstreamPool(uv_loop_t* loop) : loop_(loop) {}

  // An idle connection to `config.address` when one is alive, else a new one.
  std::shared_ptr<Downstream> acquire(const DownstreamConfig& config, const std::string& helo);
  // Takes back a connection a session is done with: kept while reusable and under the
  // configured count, else closed with QUIT.
  void release(std::shared_ptr<Downstream> downstream, const DownstreamConfig& config);
  // Closes every idle connection, and every connection released from now on (shutting down).
  void clear();

 private:
  std::shared_ptr<ClientTls> clientTls(const DownstreamConfig& config);

  uv_loop_t* loop_;
  std::vector<std::shared_ptr<Downstream>> idle_;  // most recently used last
  bool closed_ = false;
  std::shared_ptr<ClientTls> client_tls_;
};

}  // namespace mailgate
