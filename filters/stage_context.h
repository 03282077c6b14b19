#pragma once
// What a stage factory gets besides its own table: the whole configuration and the services that
// stages share, made once per pipeline (the resolver: one cache for SPF, DKIM and DMARC).

#include <memory>
#include <string>

#include "gateway/config/config.h"
#include "gateway/dns/dns_lookup.h"

namespace mailgate {

class StageContext {
 public:
  explicit StageContext(const Config& config) : config_(config) {}

  const Config& config() const { return config_; }
  // The shared resolver, created at first use; nullptr (with `error` set) when it cannot be.
  std::shared_ptr<const DnsLookup> dns(std::string& error);

 private:
  const Config& config_;
  std::shared_ptr<const DnsLookup> dns_;
  std::string dns_error_;
};

}  // namespace mailgate
