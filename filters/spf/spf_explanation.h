#pragma once
// The explanation of a fail (RFC 7208 §6.2), fetched and expanded by our own code: libspf2 hands
// exp= text back unexpanded, with spaces turned into "%" (issue 3 defect (g)), and would compile
// DNS text with its macro compiler (CVE-2023-42118, spf_libspf2_record.h). Any problem — no
// exp=, a name that cannot exist, a DNS error, not exactly one TXT record, a syntax error, bytes
// that are not printable ASCII — gives no explanation, never an error (§6.2).

#include <string>

#include "filters/spf/spf_dns_layer.h"
#include "filters/spf/spf_macro.h"
#include "filters/spf/spf_names.h"

namespace mailgate {

constexpr size_t kMaxExplanationOctets = 400;  // fits a 550 reply line (RFC 5321 §4.5.3.1.5: 512)

// `values` holds everything but d (the deciding record's domain) and p (looked up on demand).
std::string spfExplanation(SpfDnsLayer& layer, const EvaluatedRecord& deciding, MacroValues values,
                           const ClientAddress& client, unsigned ptr_names);

// %{p} (§7.3): a validated name of the client — one whose address lookup gives the client back —
// preferring `domain` itself, then a subdomain of it, then the first; "unknown" when none.
std::string validatedClientName(SpfDnsLayer& layer, const ClientAddress& client, const std::string& domain,
                                unsigned ptr_names);

}  // namespace mailgate
