#pragma once
// Whether the downstream answers, for /readyz: a load balancer must stop sending mail to a
// gateway whose downstream is gone (every message would get a 4xx). Asked on the HTTP thread,
// never on an event loop: a connect and a read of the greeting, blocking, bounded.

#include <chrono>
#include <mutex>
#include <string>

#include "gateway/config/config.h"

namespace mailgate {

// How long one probe may take: a load balancer's check times out after a few seconds.
constexpr std::chrono::milliseconds readiness_probe_timeout{2000};
// How long an answer is reused: a check every second from several balancers costs the
// downstream one connection a second at most.
constexpr std::chrono::milliseconds readiness_cache_time{1000};

class DownstreamProbe {
 public:
  explicit DownstreamProbe(HostPort downstream) : downstream_(std::move(downstream)) {}
  // True when the downstream greeted with 220 (RFC 5321 §4.2: 554 means it takes no mail) within
  // readiness_probe_timeout; the answer is kept for readiness_cache_time. Thread-safe.
  bool ready();
  // The reason the last probe failed, for the 503's body.
  std::string lastProblem();

 private:
  std::string probe();  // "" when ready, else what went wrong

  HostPort downstream_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point checked_{};
  bool checked_once_ = false;
  std::string problem_;
};

}  // namespace mailgate
