#pragma once
// A Prometheus histogram of durations whose observations come from any thread: one atomic per
// bucket, so observing never takes a lock and a scrape reads a consistent-enough snapshot
// (Prometheus tolerates a count that is one ahead of a bucket).

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailgate {

// Seconds, from a cached verdict (1 ms) to the default downstream timeout (60 s).
inline constexpr std::array<double, 14> latency_buckets_seconds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                    0.25,  0.5,    1,     2.5,  5,     10,   60};

class Histogram {
 public:
  void observe(double seconds);
  // Appends NAME_bucket{LABELS,le="..."}, NAME_sum and NAME_count lines; `labels` is "" or
  // `stage="spf"`.
  void render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::array<std::atomic<uint64_t>, latency_buckets_seconds.size() + 1> counts_{};  // last: +Inf
  std::atomic<uint64_t> sum_microseconds_{0};
};

}  // namespace mailgate
