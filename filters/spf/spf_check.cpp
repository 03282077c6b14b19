#include "filters/spf/spf_check.h"

#include <algorithm>
#include <ctime>

#include "filters/spf/spf_dns_layer.h"
#include "filters/spf/spf_evaluation.h"
#include "filters/spf/spf_explanation.h"
#include "filters/spf/spf_names.h"

namespace mailgate {
namespace {

struct Identity {
  std::optional<std::string> domain;  // set when the identity can be checked
  std::string local;                  // local-part, "postmaster" when there is none (§4.3)
  std::string why_not;                // else: why the result is none
};

bool hasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

// §2.3, §2.4, §4.3. Only what can safely reach libspf2's macro expansion gets there: the
// local-part at most 64 octets without control characters, the domain a valid LDH name of at
// most 253 octets (CVE-2023-42118 point 3, spf_libspf2_record.h).
Identity chooseIdentity(const SpfRequest& request, SpfOutcome& outcome) {
  Identity identity;
  if (request.sender.empty()) {
    outcome.identity = "helo";
    outcome.domain = request.helo;
    identity.local = "postmaster";
    identity.domain = identityDomain(request.helo);
    if (!identity.domain) identity.why_not = "HELO \"" + request.helo + "\" is not a fully qualified domain name";
    return identity;
  }
  outcome.identity = "mailfrom";
  size_t at = request.sender.rfind('@');
  std::string_view local = at == std::string::npos ? std::string_view() : std::string_view(request.sender).substr(0, at);
  std::string_view domain = at == std::string::npos ? std::string_view(request.sender)
                                                    : std::string_view(request.sender).substr(at + 1);
  outcome.domain = std::string(domain);
  identity.local = local.empty() ? "postmaster" : std::string(local);
  if (identity.local.size() > kMaxLocalPartOctets || hasControlCharacter(identity.local)) {
    identity.why_not = "sender local-part is over 64 octets or has control characters (RFC 5321 §4.5.3.1.1)";
    return identity;
  }
  identity.domain = identityDomain(domain);
  if (!identity.domain) identity.why_not = "sender domain \"" + std::string(domain) + "\" is not a valid domain name";
  return identity;
}

// %{h} and %{r} take any printable ASCII up to 253 octets; anything else is "unknown", so that
// no oversized or binary value reaches libspf2's expansion.
std::string macroSafe(const std::string& value) {
  bool printable = std::all_of(value.begin(), value.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte <= 0x7e;
  });
  return !value.empty() && value.size() <= kMaxDomainOctets && printable ? value : "unknown";
}

}  // namespace

const char* spfResultName(SpfResult result) {
  switch (result) {
    case SpfResult::None: return "none";
    case SpfResult::Neutral: return "neutral";
    case SpfResult::Pass: return "pass";
    case SpfResult::Fail: return "fail";
    case SpfResult::SoftFail: return "softfail";
    case SpfResult::TempError: return "temperror";
    case SpfResult::PermError: return "permerror";
  }
  return "none";
}

SpfOutcome checkSpf(const DnsLookup& dns, const SpfRequest& request, const SpfLimits& limits) {
  SpfOutcome outcome;
  Identity identity = chooseIdentity(request, outcome);
  if (!identity.domain) {
    outcome.result = SpfResult::None;  // §4.3: a malformed domain gives none, without a lookup
    outcome.reason = identity.why_not;
    return outcome;
  }
  outcome.domain = *identity.domain;
  outcome.sender = identity.local + "@" + *identity.domain;
  std::optional<ClientAddress> client = parseClientAddress(request.client_ip);
  if (!client) {
    outcome.result = SpfResult::None;
    outcome.reason = "client address \"" + request.client_ip + "\" is not an IP address";
    return outcome;
  }

  SpfDnsLayer layer(dns, limits, *client);
  Spf2Inputs inputs{*client, outcome.sender, macroSafe(request.helo), macroSafe(request.receiver)};
  Spf2Verdict verdict = evaluateWithLibspf2(layer, inputs);
  outcome.result = verdict.result;
  outcome.reason = std::move(verdict.reason);
  outcome.mechanism = std::move(verdict.mechanism);
  if (outcome.result == SpfResult::Fail && layer.decidingRecord()) {
    MacroValues values;
    values.s = outcome.sender;
    values.l = identity.local;
    values.o = *identity.domain;
    values.i = client->dotted;
    values.c = client->pretty;
    values.v = client->version;
    values.h = inputs.helo;
    values.r = inputs.receiver;
    values.t = static_cast<long long>(std::time(nullptr));
    outcome.explanation = spfExplanation(layer, *layer.decidingRecord(), values, *client, limits.ptr_names);
  }
  outcome.dns_queries = layer.queries();
  return outcome;
}

}  // namespace mailgate
