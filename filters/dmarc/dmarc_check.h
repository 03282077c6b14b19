#pragma once
// One DMARC evaluation (RFC 7489 §6.6) of one Author Domain: the policy record found through the
// shared resolver (the author domain's, else its organizational domain's) and parsed by
// libopendmarc, and the alignment of the SPF and DKIM passes with the author domain. Blocking (DNS): call on the thread pool.

#include <expected>
#include <string>
#include <vector>

#include "gateway/dns/dns_lookup.h"
#include "filters/auth_facts.h"

namespace mailgate {

// Reads the public suffix list once per process (libopendmarc keeps it in a global table).
std::expected<void, std::string> initialiseDmarcLibrary(const std::string& public_suffix_list);

// The registrable domain of `domain` by the public suffix list (RFC 7489 §3.2).
std::string organizationalDomain(const std::string& domain);

// RFC 7489 §3.1: strict, the same domain; relaxed, the same organizational domain.
bool aligned(const std::string& identifier, const std::string& author_domain, bool strict);

struct DmarcRecordLookup {
  enum class Status { Found, None, TempError, PermError };
  Status status = Status::None;
  std::string record;
  std::string domain;           // where it was found
  bool organizational = false;  // found at the organizational domain: sp= applies
  std::string reason;
};
DmarcRecordLookup findDmarcRecord(const DnsLookup& dns, const std::string& author_domain);

struct DmarcEvaluation {
  std::string result;  // RFC 8601 dmarc result: pass, fail, none, temperror, permerror
  std::string author_domain;
  std::string record_domain;
  std::string policy;       // p= or sp=, whichever applies: none, quarantine, reject ("" without a record)
  std::string p, sp;        // as published ("" when absent)
  int pct = 100;
  std::string disposition;  // what the policy asks for this message after pct: none, quarantine, reject
  bool spf_aligned = false;
  bool dkim_aligned = false;
  std::string reason;
};

// `sample` in [0, 100): the message is in the pct= sample when sample < pct (RFC 7489 §6.6.4);
// -1: every message is in the sample, even under pct=0 (apply_pct = false).
DmarcEvaluation evaluateDmarc(const DnsLookup& dns, const std::string& author_domain, const std::string& client_ip,
                              const std::optional<SpfFact>& spf, const std::vector<DkimFact>& dkim, int sample);

}  // namespace mailgate
