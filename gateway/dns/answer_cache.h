#pragma once
// Answers the resolver already has, kept in front of libunbound for their TTL. libunbound caches
// too, but reaching its cache through the asynchronous API costs a round trip between three
// threads over two pipes per question (measured: most of the DKIM stage's cost per message, whose
// key is the same each time); a lookup here is one mutex and a map. Only final answers are kept
// (records, NODATA, NXDOMAIN), never failures or timeouts. Bounded in entries; thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gateway/dns/dns_lookup.h"

namespace mailgate {

class AnswerCache {
 public:
  using Clock = std::chrono::steady_clock;
  // Enough for every domain a busy gateway sees within the TTLs; past it, expired answers go
  // first, then everything (the next questions refill it from libunbound's own cache).
  static constexpr std::size_t default_max_entries = 20000;
  // A TTL above this is cut to it (RFC 2181 §8 allows up to 68 years; a gateway need not trust
  // one answer that long).
  static constexpr std::chrono::seconds max_ttl{3600};

  explicit AnswerCache(std::size_t max_entries = default_max_entries) : max_entries_(max_entries) {}

  std::optional<DnsRecordSet> find(std::string_view name, uint16_t type, Clock::time_point now = Clock::now()) const;
  // Keeps `answer` for `ttl` seconds when it is a final answer and ttl > 0.
  void store(std::string_view name, uint16_t type, const DnsRecordSet& answer, int ttl,
             Clock::time_point now = Clock::now());
  std::size_t size() const;

 private:
  struct Entry {
    DnsRecordSet answer;
    Clock::time_point expires;
  };
  static std::string key(std::string_view name, uint16_t type);

  std::size_t max_entries_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace mailgate
