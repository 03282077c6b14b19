#include "gateway/metrics/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mailgate {

void Histogram::observe(double seconds) {
  std::size_t bucket = 0;
  while (bucket < latency_buckets_seconds.size() && seconds > latency_buckets_seconds[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  double micro = std::max(0.0, seconds) * 1e6;
  sum_microseconds_.fetch_add(static_cast<uint64_t>(std::llround(micro)), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
  std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
  uint64_t cumulative = 0;
  char line[256];
  for (std::size_t bucket = 0; bucket <= latency_buckets_seconds.size(); ++bucket) {
    cumulative += counts_[bucket].load(std::memory_order_relaxed);
    std::string le = "+Inf";
    if (bucket < latency_buckets_seconds.size()) {
      std::snprintf(line, sizeof line, "%g", latency_buckets_seconds[bucket]);
      le = line;
    }
    out += std::string(name) + "_bucket{" + prefix + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  std::snprintf(line, sizeof line, "%.6f", static_cast<double>(sum_microseconds_.load(std::memory_order_relaxed)) / 1e6);
  std::string braces = labels.empty() ? std::string() : "{" + std::string(labels) + "}";
  out += std::string(name) + "_sum" + braces + " " + line + "\n";
  out += std::string(name) + "_count" + braces + " " + std::to_string(cumulative) + "\n";
}

}  // namespace mailgate
