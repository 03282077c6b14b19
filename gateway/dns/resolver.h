#pragma once
// The gateway's one DNS resolver (design.md §3): libunbound in forward mode, with its cache, the
// configured upstream servers (or /etc/resolv.conf), and a hard per-query deadline.

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/dns/dns_lookup.h"

namespace mailgate {

class Resolver final : public DnsLookup {
 public:
  // Fails when libunbound refuses the configuration (a bad forwarder, an unreadable resolv.conf)
  // or a thread or descriptor cannot be had.
  static std::expected<std::shared_ptr<Resolver>, std::string> create(const DnsConfig& config);
  ~Resolver() override;
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Blocks the calling (pool) thread at most dns.timeout × (dns.retries + 1); thread-safe.
  DnsRecordSet query(std::string_view name, uint16_t type) const override;

  // Each query's hard deadline, for logs and tests.
  Duration deadline() const;

 private:
  struct Engine;  // the ub_ctx, the thread that delivers its answers, the wake-up descriptor
  explicit Resolver(std::unique_ptr<Engine> engine);
  std::unique_ptr<Engine> engine_;
};

}  // namespace mailgate
