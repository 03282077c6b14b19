#pragma once
// The per-check DNS budget (RFC 7208 §4.6.4), kept by the DNS layer for the whole check —
// includes and redirects too. libspf2 counts DNS-querying terms per record (a fresh
// SPF_response_t per include), which let a 9×9×9 include tree cost 820 queries and answer fail
// (issue 3 defect (f)); it has no void-lookup limit at all.
//
// libspf2 never tells the layer which term a lookup is for, so terms are recognised from the
// lookups themselves. What libspf2 asks for, per term (spf_interpret.c, spf_dns.c):
//   include, redirect   our get_spf hook, once                          → a term
//   a                   one A/AAAA, should_cache = 1                    → a term
//   exists              one A, should_cache = 0                         → a term
//   mx                  one MX, then A/AAAA (cache 1) for each MX name, in order
//   ptr                 one PTR (cache 1), then A/AAAA (cache 1) for each PTR name, in order
//   %{p} in a macro     one PTR (cache 0), then A/AAAA (cache 0) per name, once per check —
//                       inside a term that is counted by its own lookup, so not a term itself
// Hence: MX and PTR-with-cache lookups are terms and arm a list of the names whose address
// lookups are expected next; an A/AAAA lookup is one of those when it names the next expected
// name with the same cache flag, and a term (a or exists) otherwise, which also disarms the list
// (libspf2 stops an mx/ptr at its first match, so the list may be left half used). Only an "a"
// that names the very next MX/PTR name right after such an early stop could be taken for an
// address lookup — at most one term per MX/PTR answer, and the hard cap on queries
// (SpfLimits::total_queries) bounds the check whatever is miscounted.

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "filters/spf/spf_check.h"

namespace mailgate {

enum class LookupRole {
  Term,               // a, exists, mx, ptr (and include/redirect, counted by the layer)
  MxAddress,          // A/AAAA of an MX name
  PtrAddress,         // A/AAAA of a PTR name, for the ptr mechanism
  PtrMacro,           // the PTR lookup of %{p}
  PtrMacroAddress,    // A/AAAA of a PTR name, for %{p}
  Other,              // anything else (libspf2 asks for nothing else here)
};

class SpfBudget {
 public:
  explicit SpfBudget(const SpfLimits& limits) : limits_(limits) {}

  // Which lookup this is (see above); a Term disarms the expected names.
  LookupRole classify(uint16_t type, std::string_view name, bool should_cache);
  // After an MX or PTR answer: the names whose address lookups come next.
  void expectAddresses(std::vector<std::string> names, LookupRole role, bool should_cache);
  // A term (include/redirect included) about to be evaluated; false and `error` past the limit.
  bool countTerm(std::string& error);
  // A term whose lookup answered NXDOMAIN or no records (§4.6.4 "void lookups").
  bool countVoid(std::string& error);
  // A query about to go to the resolver (cache hits are free).
  bool countQuery(std::string& error);

  unsigned terms() const { return terms_; }
  unsigned voids() const { return voids_; }
  unsigned queries() const { return queries_; }

 private:
  SpfLimits limits_;
  unsigned terms_ = 0;
  unsigned voids_ = 0;
  unsigned queries_ = 0;
  std::deque<std::string> expected_;
  LookupRole expected_role_ = LookupRole::Other;
  bool expected_cache_ = false;
};

}  // namespace mailgate
