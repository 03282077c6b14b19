#include "filters/stage_context.h"

#include "gateway/dns/resolver.h"

namespace mailgate {

std::shared_ptr<const DnsLookup> StageContext::dns(std::string& error) {
  if (!dns_ && dns_error_.empty()) {
    auto resolver = Resolver::create(config_.dns);
    if (resolver) dns_ = std::move(*resolver);
    else dns_error_ = resolver.error();
  }
  error = dns_error_;
  return dns_;
}

}  // namespace mailgate
