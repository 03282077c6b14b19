#pragma once
// A strict RFC 7208 record validator (§4.5 record selection, §4.6 and §12 ABNF, §7.1 macros).
// Every SPF record of a check — top level, include, redirect — passes through it before libspf2
// sees anything, because libspf2 evaluates records it should refuse and refuses some it should
// evaluate (issue 3 defects (c) (d) (e)). A record that fails makes the check "permerror".
//
// (No std::expected here: the fuzz target builds these files with Debian's clang, whose
// __cpp_concepts is too old for libstdc++ 12's <expected>.)

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filters/spf/spf_macro.h"

namespace mailgate {

enum class SpfQualifier : char { Pass = '+', Fail = '-', SoftFail = '~', Neutral = '?' };
enum class SpfMechanismKind { All, Include, A, Mx, Ptr, Ip4, Ip6, Exists };

struct SpfMechanism {
  SpfQualifier qualifier = SpfQualifier::Pass;
  SpfMechanismKind kind = SpfMechanismKind::All;
  std::optional<MacroString> domain;  // include a mx ptr exists: the domain-spec, when given
  std::optional<unsigned> ip4_cidr;   // a mx ip4: "/n"
  std::optional<unsigned> ip6_cidr;   // a mx: "//n"; ip6: "/n"
  std::string address;                // ip4 ip6: the network as written (validated)
  std::string text;                   // the term as published, for logs ("-all", "include:x")
  bool queriesDns() const;            // §4.6.4: include a mx ptr exists
};

struct SpfRecord {
  std::vector<SpfMechanism> mechanisms;
  std::optional<MacroString> redirect;  // redirect= (§6.1)
  std::optional<MacroString> exp;       // exp= (§6.2)
  bool has_all = false;                 // §6.1: redirect is ignored when "all" is present
  unsigned unknown_modifiers = 0;       // validated, then ignored (§6)
  unsigned dnsTerms() const;            // DNS-querying terms, redirect included
};

struct SpfParseResult {
  std::optional<SpfRecord> record;  // set when the record is valid
  std::string error;                // else: why, e.g. "unknown mechanism \"moo\""
};

// Parses one record that starts with "v=spf1" (as selected by selectSpfRecord).
SpfParseResult parseSpfRecord(std::string_view text);

// §4.5: of a name's TXT records, those that begin with "v=spf1" (case-insensitive) followed by
// a space or the end. Records that are not SPF, even non-ASCII ones, are none of our business.
std::vector<std::string_view> selectSpfRecords(const std::vector<std::string>& txt);

// A domain-spec (§7.1): a macro-string that ends in "." toplabel [ "." ] or in a macro-expand.
// A domain-spec without macros must also be a possible name (labels of 1-63 octets, 253 in
// all); with macros, that is checked after expansion.
std::optional<MacroString> parseDomainSpec(std::string_view text, std::string& error);

}  // namespace mailgate
