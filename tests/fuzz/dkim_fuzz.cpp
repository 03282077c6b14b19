// libFuzzer target for DKIM verification (tests/fuzz/README.md): libopendkim parses the
// DKIM-Signature fields and the key records; what is ours is around it: DkimVerifier (the header
// split into fields, the From: fields, the results), the DNS answer packets we build for
// libopendkim from the resolver's records (dnsAnswerPacket), the key decoding libopendkim binds to
// (d2i_PUBKEY_bio in filters/dkim/public_key_cache.cpp), and the verdict and
// Authentication-Results entries made of the results (DkimStage::decide).
//
// Input: key records, one a line, "selector record" ("!nxdomain", "!nodata", "!servfail" or
// "!timeout" for a failed lookup), up to the first empty line; then the message as sent. The
// zone answers "<selector>._domainkey.<any domain>" with that selector's records. The message
// is verified twice: fed whole, and in two pieces split at a point the input's hash chooses.
// Findings, besides crashes and sanitizer reports:
//  - the two runs' results differ;
//  - a DNS answer packet we build that does not read back (addAnswerSection) as its records;
//  - more results than max_signatures; a result outside RFC 8601's; a pass for rsa-sha1, for an
//    RSA key under 1024 bits, or without a d=; results with an error; a From: field with CR or LF;
//  - an Authentication-Results header of the verdict that does not read back as written
//    (auth_results_check.h).

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "filters/author_domains.h"
#include "filters/dkim/dkim_stage.h"
#include "filters/dkim/dkim_verifier.h"
#include "tests/fuzz/auth_results_check.h"
#include "tests/fuzz/fuzz_support.h"

namespace mailgate {
namespace {

using fuzz::require;

class FuzzZone final : public DnsLookup {
 public:
  void set(std::multimap<std::string, std::string> records) { records_ = std::move(records); }

  DnsRecordSet query(std::string_view name, uint16_t type) const override {
    DnsRecordSet set;
    std::string selector(name.substr(0, name.find('.')));
    set.status = DnsStatus::NoData;
    if (type != dns_type::TXT) return set;
    auto [begin, end] = records_.equal_range(selector);
    for (auto it = begin; it != end; ++it) {
      const std::string& record = it->second;
      if (record == "!nxdomain") set.status = DnsStatus::NxDomain;
      else if (record == "!nodata") set.status = DnsStatus::NoData;
      else if (record == "!servfail") set.status = DnsStatus::ServFail;
      else if (record == "!timeout") set.status = DnsStatus::Timeout;
      else {
        set.status = DnsStatus::Ok;
        set.txt.push_back(record);
        set.txt_strings.push_back({record});
      }
      if (set.status != DnsStatus::Ok) {
        set.txt.clear();
        break;
      }
    }
    checkPacket(name, type, set);
    return set;
  }

 private:
  // What libopendkim will parse must be what the resolver answered.
  static void checkPacket(std::string_view name, uint16_t type, const DnsRecordSet& set) {
    std::string packet = dnsAnswerPacket(name, type, set);
    if (packet.empty()) return;  // a name no packet can carry: the lookup fails
    bool fits = std::all_of(set.txt.begin(), set.txt.end(), [](const std::string& t) { return t.size() < 60000; });
    if (!fits) return;
    DnsRecordSet back;
    auto rcode = addAnswerSection(back, packet, type);
    require(rcode.has_value(), "our DNS answer packet does not parse", packet);
    require(*rcode == (set.status == DnsStatus::NxDomain ? 3 : 0), "our DNS answer packet has another RCODE");
    if (set.status == DnsStatus::Ok) require(back.txt == set.txt, "our DNS answer packet holds other records", packet);
    else require(back.txt.empty(), "records in a packet for a failed lookup", packet);
  }

  std::multimap<std::string, std::string> records_;
};

FuzzZone& zone() {
  static auto* instance = new FuzzZone;
  return *instance;
}

std::shared_ptr<const DkimLibrary> library() {
  static std::shared_ptr<const DkimLibrary> made = [] {
    auto created = DkimLibrary::make(std::shared_ptr<const DnsLookup>(&zone(), [](const DnsLookup*) {}), {});
    if (!created) fuzz::broken("harness: libopendkim did not start", created.error());
    return *created;
  }();
  return made;
}

struct Verification {
  std::vector<DkimSignatureResult> results;
  std::string error;
  std::vector<std::string> from_fields;
};

Verification verify(std::string_view message, std::size_t split) {
  DkimVerifier verifier(library());
  verifier.feed(message.substr(0, split));
  verifier.feed(message.substr(split));
  Verification done;
  done.results = verifier.finish(done.error);
  done.from_fields = verifier.fromFields();
  return done;
}

std::string describe(const Verification& v) {
  std::string out = v.error;
  for (const auto& r : v.results)
    out += "|" + r.result + "," + r.reason + "," + r.domain + "," + r.selector + "," + r.algorithm + "," + r.b + "," +
           std::to_string(r.key_bits);
  for (const auto& f : v.from_fields) out += "|from:" + f;
  return out;
}

void check(const Verification& v) {
  DkimLibraryOptions options;
  require(v.results.size() <= static_cast<std::size_t>(options.max_signatures), "more results than max_signatures");
  require(v.error.empty() || v.results.empty(), "results with an error");
  for (const DkimSignatureResult& r : v.results) {
    static const std::vector<std::string> known{"pass", "fail", "policy", "neutral", "temperror", "permerror"};
    require(std::find(known.begin(), known.end(), r.result) != known.end(), "a result RFC 8601 does not have", r.result);
    if (r.result != "pass") continue;
    require(r.algorithm == "rsa-sha256" || r.algorithm == "ed25519-sha256", "a pass for another algorithm", r.algorithm);
    require(r.algorithm != "rsa-sha256" || r.key_bits >= options.min_key_bits, "a pass with a short RSA key");
    require(!r.domain.empty(), "a pass without d=");
  }
  require(v.from_fields.size() <= 4, "more From: fields kept than collected");
  for (const std::string& from : v.from_fields)
    require(from.find_first_of("\r\n") == std::string::npos, "a From: field with CR or LF", from);
}

}  // namespace
}  // namespace mailgate

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::multimap<std::string, std::string> records;
  while (!input.empty()) {
    std::size_t lf = input.find('\n');
    std::string_view line = input.substr(0, lf);
    input.remove_prefix(lf == std::string_view::npos ? input.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    std::size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    records.emplace(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  }
  zone().set(std::move(records));

  Verification whole = verify(input, input.size());
  check(whole);
  Verification pieces = verify(input, fuzz::hashOf(input) % (input.size() + 1));
  fuzz::require(describe(whole) == describe(pieces), "results differ when the message comes in pieces", describe(pieces));

  DkimStage::Policy policy;
  Verdict verdict = DkimStage::decide(whole.results, whole.error, authorDomains(whole.from_fields).domains, policy);
  fuzz::checkAuthenticationResults("mx.test", verdict.auth_results);
  return 0;
}
