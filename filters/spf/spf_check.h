#pragma once
// The SPF check (RFC 7208 check_host()) as a library: libspf2 evaluates, and everything it is
// given or asks for passes through our layer first — the strict record validator, a per-check
// DNS budget, result mapping, explanations of our own (issue 3 point 5; KNOWN_LIMITATIONS.md for
// what remains). No I/O of its own: every query goes through the DnsLookup, and the call blocks
// for as long as those queries take, so run it on the thread pool (design.md §3).

#include <string>

#include "gateway/dns/dns_lookup.h"

namespace mailgate {

enum class SpfResult { None, Neutral, Pass, Fail, SoftFail, TempError, PermError };

// RFC 7208 §2.6 names: "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror".
const char* spfResultName(SpfResult result);

struct SpfRequest {
  std::string client_ip;  // "192.0.2.1", "2001:db8::1", or IPv4-mapped "::ffff:192.0.2.1" (IPv4, §5)
  std::string sender;     // MAIL FROM address ("user@example.com"), empty for the null sender
  std::string helo;       // HELO/EHLO argument
  std::string receiver;   // our hostname, for the %{r} macro
};

struct SpfLimits {                // RFC 7208 §4.6.4 and our own hard caps
  unsigned dns_terms = 10;        // DNS-querying terms (include a mx ptr exists redirect) per check
  unsigned void_lookups = 2;      // terms whose lookup answered NXDOMAIN or no records
  unsigned mx_names = 10;         // MX names per mx mechanism (more: permerror)
  unsigned ptr_names = 10;        // PTR names checked per ptr / %{p} (more are ignored)
  unsigned total_queries = 40;    // DNS queries per check, whatever the records say
};

struct SpfOutcome {
  SpfResult result = SpfResult::None;
  std::string identity;     // "mailfrom" or "helo" (null sender: the HELO identity, §2.3/§2.4)
  std::string domain;       // the domain checked
  std::string sender;       // the address checked (postmaster@helo for the helo identity)
  std::string explanation;  // Fail only: the domain's exp= text, expanded (§6.2); else empty
  std::string reason;       // short human text: "mechanism -all matched", "too many DNS-querying terms (11 > 10)"
  std::string mechanism;    // the mechanism that matched, when one did ("-all", "include:_spf.example.com")
  unsigned dns_queries = 0; // DNS queries this check made
};

SpfOutcome checkSpf(const DnsLookup& dns, const SpfRequest& request, const SpfLimits& limits = {});

}  // namespace mailgate
