#pragma once
// What the resolver was asked and how much of it its answer cache took, for /metrics: counted
// process-wide (one resolver serves every worker), read from the HTTP thread.

#include <cstdint>

namespace mailgate {

struct DnsCounts {
  uint64_t questions = 0;   // every query() asked of the resolver
  uint64_t cache_hits = 0;  // answered from the AnswerCache, no libunbound round trip
};

void countDnsQuestion(bool from_cache);
DnsCounts dnsCounts();

}  // namespace mailgate
