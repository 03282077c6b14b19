#include "filters/dmarc/dmarc_check.h"

#include <strings.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "filters/dmarc/dmarc_c.h"
#include "gateway/util/c_free.h"

namespace mailgate {
namespace {

using DmarcPolicyContext = std::unique_ptr<DMARC_POLICY_T, CFree<&opendmarc_policy_connect_shutdown>>;

u_char* bytes(std::string& text) { return reinterpret_cast<u_char*>(text.data()); }

const char* policyName(int p) {
  switch (p) {
    case DMARC_RECORD_P_NONE: return "none";
    case DMARC_RECORD_P_QUARANTINE: return "quarantine";
    case DMARC_RECORD_P_REJECT: return "reject";
    default: return "";
  }
}

// RFC 7489 §6.6.3: of the TXT records at _dmarc.<domain>, those that start with "v=DMARC1".
DmarcRecordLookup lookupAt(const DnsLookup& dns, const std::string& domain) {
  DmarcRecordLookup lookup;
  lookup.domain = domain;
  DnsRecordSet answer = dns.query("_dmarc." + domain, dns_type::TXT);
  switch (answer.status) {
    case DnsStatus::Ok: break;
    case DnsStatus::NoData:
    case DnsStatus::NxDomain: return lookup;
    default:
      lookup.status = DmarcRecordLookup::Status::TempError;
      lookup.reason = std::string("DNS ") + dnsStatusName(answer.status) + " for _dmarc." + domain;
      return lookup;
  }
  std::vector<std::string> records;
  for (const auto& text : answer.txt) {
    std::string_view start(text);
    while (!start.empty() && start.front() == ' ') start.remove_prefix(1);
    if (start.size() >= 8 && strncasecmp(start.data(), "v=DMARC1", 8) == 0 &&
        (start.size() == 8 || start[8] == ';' || start[8] == ' '))
      records.push_back(text);
  }
  if (records.size() > 1) {  // §6.6.3 step 5: several records → no policy can be chosen
    lookup.status = DmarcRecordLookup::Status::PermError;
    lookup.reason = "more than one DMARC record at _dmarc." + domain;
    return lookup;
  }
  if (records.size() == 1) {
    lookup.status = DmarcRecordLookup::Status::Found;
    lookup.record = records.front();
  }
  return lookup;
}

// libopendmarc takes a list it cannot read as an empty one: organizational domains are then
// guessed without it, and a parent domain's p=reject (under a suffix such as co.uk) silently stops
// applying (RFC 7489 §3.2, §6.6.3).
std::expected<void, std::string> readable(const std::string& path) {
  std::unique_ptr<std::FILE, CFree<&std::fclose>> file(std::fopen(path.c_str(), "rb"));
  // A directory opens and fails only when read (EISDIR); an empty file holds no rule at all.
  int first = file ? std::fgetc(file.get()) : EOF;
  if (first != EOF) return {};
  int error = errno;
  if (file && !std::ferror(file.get())) return std::unexpected("the public suffix list " + path + " is empty");
  return std::unexpected("cannot read the public suffix list " + path + ": " + std::strerror(error));
}

}  // namespace

std::expected<void, std::string> initialiseDmarcLibrary(const std::string& public_suffix_list) {
  if (auto found = readable(public_suffix_list); !found) return found;
  static std::mutex mutex;
  static std::string loaded;
  std::lock_guard lock(mutex);
  if (!loaded.empty()) {
    if (loaded == public_suffix_list) return {};
    return std::unexpected("the public suffix list is read once per process (already read: " + loaded + ")");
  }
  OPENDMARC_LIB_T lib{};
  lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
  if (public_suffix_list.size() >= sizeof lib.tld_source_file) return std::unexpected("public_suffix_list path too long");
  std::memcpy(lib.tld_source_file, public_suffix_list.c_str(), public_suffix_list.size() + 1);
  if (opendmarc_policy_library_init(&lib) != DMARC_PARSE_OKAY)
    return std::unexpected("cannot read the public suffix list " + public_suffix_list);
  loaded = public_suffix_list;
  return {};
}

std::string organizationalDomain(const std::string& domain) {
  std::string copy = domain;
  u_char found[256] = {};
  std::string result;
  if (!copy.empty() && opendmarc_get_tld(bytes(copy), found, sizeof found) == 0) result = reinterpret_cast<char*>(found);
  if (!result.empty()) return result;
  // No rule of the list matched (an unlisted TLD such as .example): the list's default rule "*"
  // makes the TLD the public suffix, so the organizational domain is the last two labels.
  std::size_t last = domain.rfind('.');
  if (last == std::string::npos || last == 0) return domain;
  std::size_t before = domain.rfind('.', last - 1);
  return before == std::string::npos ? domain : domain.substr(before + 1);
}

bool aligned(const std::string& identifier, const std::string& author_domain, bool strict) {
  auto lower = [](std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    while (!text.empty() && text.back() == '.') text.pop_back();
    return text;
  };
  std::string a = lower(identifier), b = lower(author_domain);
  if (a.empty() || b.empty()) return false;
  if (strict) return a == b;
  return organizationalDomain(a) == organizationalDomain(b);
}

DmarcRecordLookup findDmarcRecord(const DnsLookup& dns, const std::string& author_domain) {
  DmarcRecordLookup lookup = lookupAt(dns, author_domain);
  if (lookup.status != DmarcRecordLookup::Status::None) return lookup;
  std::string organizational = organizationalDomain(author_domain);
  if (organizational == author_domain) return lookup;
  DmarcRecordLookup parent = lookupAt(dns, organizational);
  parent.organizational = true;
  return parent;
}

DmarcEvaluation evaluateDmarc(const DnsLookup& dns, const std::string& author_domain, const std::string& client_ip,
                              const std::optional<SpfFact>& spf, const std::vector<DkimFact>& dkim, int sample) {
  DmarcEvaluation evaluation;
  evaluation.author_domain = author_domain;
  DmarcRecordLookup lookup = findDmarcRecord(dns, author_domain);
  evaluation.record_domain = lookup.domain;
  switch (lookup.status) {
    case DmarcRecordLookup::Status::None:
      evaluation.result = "none";
      evaluation.reason = "no DMARC record";
      return evaluation;
    case DmarcRecordLookup::Status::TempError:
      evaluation.result = "temperror";
      evaluation.reason = lookup.reason;
      return evaluation;
    case DmarcRecordLookup::Status::PermError:
      evaluation.result = "permerror";
      evaluation.reason = lookup.reason;
      return evaluation;
    case DmarcRecordLookup::Status::Found: break;
  }
  std::string ip = client_ip;
  DmarcPolicyContext context(opendmarc_policy_connect_init(bytes(ip), ip.find(':') != std::string::npos));
  if (!context) {
    evaluation.result = "temperror";
    evaluation.reason = "libopendmarc could not start";
    return evaluation;
  }
  std::string from = author_domain;
  std::string record = lookup.record;
  std::string record_domain = lookup.domain;
  std::string organizational = lookup.domain;
  if (opendmarc_policy_store_from_domain(context.get(), bytes(from)) != DMARC_PARSE_OKAY ||
      opendmarc_policy_store_dmarc(context.get(), bytes(record), bytes(record_domain),
                                   lookup.organizational ? bytes(organizational) : nullptr) != DMARC_PARSE_OKAY) {
    evaluation.result = "permerror";
    evaluation.reason = "DMARC record does not parse: " + lookup.record.substr(0, 200);
    return evaluation;
  }
  int p = 0, sp = 0, pct = 100, adkim = DMARC_RECORD_A_RELAXED, aspf = DMARC_RECORD_A_RELAXED;
  opendmarc_policy_fetch_p(context.get(), &p);
  opendmarc_policy_fetch_sp(context.get(), &sp);
  opendmarc_policy_fetch_adkim(context.get(), &adkim);
  opendmarc_policy_fetch_aspf(context.get(), &aspf);
  if (opendmarc_policy_fetch_pct(context.get(), &pct) != DMARC_PARSE_OKAY || pct < 0 || pct > 100) pct = 100;
  // Alignment (RFC 7489 §3.1) is ours, not libopendmarc's: its relaxed check compares
  // organizational domains without the public suffix list's default rule ("*": a name under an
  // unlisted TLD has one label plus the TLD), so under such a TLD it aligns too little, and its
  // prefix comparison would let a public suffix itself align.
  // §4.2: SPF counts for the MAIL FROM domain (or the HELO name for the null sender).
  if (spf && spf->result == "pass" && !spf->domain.empty())
    evaluation.spf_aligned = aligned(spf->domain, author_domain, aspf == DMARC_RECORD_A_STRICT);
  for (const auto& signature : dkim)
    if (signature.result == "pass" && aligned(signature.domain, author_domain, adkim == DMARC_RECORD_A_STRICT))
      evaluation.dkim_aligned = true;
  evaluation.p = policyName(p);
  evaluation.sp = policyName(sp);
  evaluation.pct = pct;
  evaluation.policy = lookup.organizational && !evaluation.sp.empty() ? evaluation.sp : evaluation.p;
  if (evaluation.dkim_aligned || evaluation.spf_aligned) {
    evaluation.result = "pass";
    evaluation.disposition = "none";
    evaluation.reason = std::string("aligned ") + (evaluation.dkim_aligned ? "dkim" : "spf");
    return evaluation;
  }
  // A check that could not finish for an aligned identifier might still have passed: no policy
  // is applied on a guess (RFC 7489 §6.6.2 leaves temporary failures to the receiver).
  bool unfinished = spf && spf->result == "temperror" && aligned(spf->domain, author_domain, aspf == DMARC_RECORD_A_STRICT);
  for (const auto& signature : dkim)
    if (signature.result == "temperror" && aligned(signature.domain, author_domain, adkim == DMARC_RECORD_A_STRICT))
      unfinished = true;
  if (unfinished) {
    evaluation.result = "temperror";
    evaluation.disposition = "none";
    evaluation.reason = "an aligned SPF or DKIM check had a temporary error";
    return evaluation;
  }
  evaluation.result = "fail";
  evaluation.reason = "neither SPF nor DKIM passed aligned with " + author_domain;
  std::string disposition = evaluation.policy.empty() ? "none" : evaluation.policy;
  // §6.6.4: outside the pct= sample, the next less strict policy applies.
  if (disposition != "none" && sample >= pct) {
    disposition = disposition == "reject" ? "quarantine" : "none";
    evaluation.reason += " (outside the pct=" + std::to_string(pct) + " sample)";
  }
  evaluation.disposition = disposition;
  return evaluation;
}

}  // namespace mailgate
