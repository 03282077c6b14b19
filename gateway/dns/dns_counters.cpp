#include "gateway/dns/dns_counters.h"

#include <atomic>

namespace mailgate {
namespace {

std::atomic<uint64_t> questions{0};
std::atomic<uint64_t> cache_hits{0};

}  // namespace

void countDnsQuestion(bool from_cache) {
  questions.fetch_add(1, std::memory_order_relaxed);
  if (from_cache) cache_hits.fetch_add(1, std::memory_order_relaxed);
}

DnsCounts dnsCounts() {
  return {questions.load(std::memory_order_relaxed), cache_hits.load(std::memory_order_relaxed)};
}

}  // namespace mailgate
