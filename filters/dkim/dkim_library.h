#pragma once
// One libopendkim instance (DKIM_LIB) per dkim stage, with its key lookups routed through the
// gateway's shared resolver by dkim_dns_set_query_* (design.md §3): libopendkim never uses its own
// blocking resolver, and DKIM keys share the cache with SPF and DMARC. The library handle is
// thread-safe for verifying many messages at once, each with its own DKIM handle.

#include <cstddef>
#include <expected>
#include <memory>
#include <string>

#include "gateway/c/opendkim.h"
#include "gateway/dns/dns_lookup.h"
#include "gateway/util/c_free.h"

namespace mailgate {

using DkimLibHandle = std::unique_ptr<DKIM_LIB, CFree<&dkim_close>>;

struct DkimLibraryOptions {
  // RFC 8301 §3.2: verifiers must not accept RSA keys under 1024 bits; such signatures get the
  // "policy" result.
  unsigned min_key_bits = 1024;
  // At most this many signatures are evaluated per message (each costs a key lookup); the rest are
  // ignored, so that a message with hundreds of signatures cannot make us do hundreds of lookups.
  int max_signatures = 8;
};

class DkimLibrary {
 public:
  static std::expected<std::shared_ptr<DkimLibrary>, std::string> make(std::shared_ptr<const DnsLookup> dns,
                                                                       DkimLibraryOptions options);
  DKIM_LIB* get() const { return lib_.get(); }
  const DkimLibraryOptions& options() const { return options_; }
  const DnsLookup& dns() const { return *dns_; }

  DkimLibrary(std::shared_ptr<const DnsLookup> dns, DkimLibraryOptions options, DkimLibHandle lib)
      : dns_(std::move(dns)), options_(options), lib_(std::move(lib)) {}

 private:
  std::shared_ptr<const DnsLookup> dns_;
  DkimLibraryOptions options_;
  DkimLibHandle lib_;
};

// The DNS answer libopendkim parses (RFC 1035 §4.1), for `name`/`type` as `set` describes it:
// the resolver's own packet when it has one, else one built from the records (for lookups that
// come from somewhere other than libunbound, e.g. in-memory zones in tests).
std::string dnsAnswerPacket(std::string_view name, uint16_t type, const DnsRecordSet& set);

}  // namespace mailgate
