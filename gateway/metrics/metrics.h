#pragma once
// The gateway's counters for Prometheus (/metrics): connections, replies, and what the decision
// records say (transactions by action, refusals by reason, stage verdicts and latencies, the
// downstream's replies and latency, rule hits). Workers update them from their own loops and the
// HTTP thread reads them: plain counters are atomics; the families keyed by a name (stage, rule,
// refusal reason) are maps behind one mutex, taken once per record, never during I/O.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "gateway/metrics/histogram.h"

namespace mailgate {

// The rules with the most hits shown by /metrics: a rule set has thousands of rules, and a
// series per rule would swamp a Prometheus server; the top ones are what an operator looks at.
constexpr std::size_t max_reported_rules = 25;

class Metrics {
 public:
  void connectionOpened();
  void connectionClosed();
  // Counts the replies in bytes the session wrote (one per final reply line, by code class).
  void repliesWritten(std::string_view output);
  // One decision record, as written to the log.
  void observe(const nlohmann::json& record);
  // Where the decision log's dropped-record count is read at scrape time. Set before the
  // listener starts, never after.
  void readDroppedRecordsFrom(std::function<uint64_t()> source) { dropped_records_ = std::move(source); }
  // The same for the resolver's questions and cache hits.
  void readDnsCountsFrom(std::function<std::pair<uint64_t, uint64_t>()> source) { dns_counts_ = std::move(source); }
  // With [history]: records stored, and records the history could not take (left to the log).
  void readHistoryCountsFrom(std::function<std::pair<uint64_t, uint64_t>()> source) { history_counts_ = std::move(source); }

  // The Prometheus text exposition format (version 0.0.4).
  std::string render() const;

 private:
  struct StageKey {
    std::string stage;
    std::string verdict;
    auto operator<=>(const StageKey&) const = default;
  };

  void observeStages(const nlohmann::json& stages, bool with_session_level);

  std::atomic<uint64_t> connections_open_{0};
  std::atomic<uint64_t> connections_total_{0};
  std::array<std::atomic<uint64_t>, 6> replies_by_class_{};        // index: first digit (1-5)
  std::array<std::atomic<uint64_t>, 6> downstream_by_class_{};     // same
  std::array<std::atomic<uint64_t>, 6> transactions_by_action_{};  // transaction_actions
  std::array<std::atomic<uint64_t>, 3> sessions_by_action_{};      // session_actions
  Histogram downstream_latency_;
  Histogram transaction_latency_;

  std::function<uint64_t()> dropped_records_;
  std::function<std::pair<uint64_t, uint64_t>()> dns_counts_;
  std::function<std::pair<uint64_t, uint64_t>()> history_counts_;

  mutable std::mutex mutex_;
  std::map<std::string, uint64_t> refusals_;  // connection refusals by reason
  std::map<StageKey, uint64_t> stage_verdicts_;
  std::map<std::string, std::unique_ptr<Histogram>> stage_latency_;
  std::map<std::string, uint64_t> rule_hits_;
};

}  // namespace mailgate
