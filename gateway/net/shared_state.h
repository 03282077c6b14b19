#pragma once
// What every worker shares: the current Runtime (configuration and pipeline, swapped whole by a
// reload), the decision log, the metrics, and the connection counts behind max_connections and
// max_connections_per_client.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "gateway/log/decision_log.h"
#include "gateway/metrics/metrics.h"
#include "gateway/tls/server_tls.h"
#include "gateway/transaction/runtime.h"

namespace mailgate {

class ConnectionLimiter {
 public:
  enum class Verdict { Accepted, TooManyTotal, TooManyFromClient };
  Verdict acquire(const std::string& ip, uint32_t max_total, uint32_t max_per_client);
  void release(const std::string& ip);
  uint32_t total() const { return total_.load(); }

 private:
  std::atomic<uint32_t> total_{0};
  std::mutex mutex_;
  std::unordered_map<std::string, uint32_t> per_client_;
};

class SharedState {
 public:
  SharedState(std::shared_ptr<const Runtime> runtime, std::shared_ptr<const ServerTls> tls,
              std::shared_ptr<DecisionLog> log)
      : runtime_(std::move(runtime)), tls_(std::move(tls)), log_(std::move(log)) {}

  std::shared_ptr<const Runtime> runtime() const {
    std::lock_guard lock(mutex_);
    return runtime_;
  }
  // The certificates new connections are served with (null without [tls]); a connection keeps
  // the one it started with.
  std::shared_ptr<const ServerTls> tls() const {
    std::lock_guard lock(mutex_);
    return tls_;
  }
  void replace(std::shared_ptr<const Runtime> runtime, std::shared_ptr<const ServerTls> tls) {
    std::lock_guard lock(mutex_);
    runtime_ = std::move(runtime);
    tls_ = std::move(tls);
  }
  DecisionLog& log() { return *log_; }
  ConnectionLimiter& limiter() { return limiter_; }
  Metrics& metrics() { return metrics_; }
  // Session ids: unique within the process and sortable by time.
  std::string nextSessionId();
  // A connection refused because the process had no descriptor left (RLIMIT_NOFILE): said on
  // standard error at once, then at most once a minute with the count since, so that a flood of
  // clients does not flood the log.
  void descriptorsRanOut();

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Runtime> runtime_;
  std::shared_ptr<const ServerTls> tls_;
  std::shared_ptr<DecisionLog> log_;
  ConnectionLimiter limiter_;
  Metrics metrics_;
  std::atomic<uint64_t> sessions_{0};
  std::mutex shortage_mutex_;
  std::optional<std::chrono::steady_clock::time_point> shortage_reported_;
  uint64_t shortage_unreported_ = 0;
};

}  // namespace mailgate
