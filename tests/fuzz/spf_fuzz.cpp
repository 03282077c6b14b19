// libFuzzer target for the SPF layer (tests/fuzz/README.md). Input, split at the first three
// newlines: client IP, MAIL FROM, HELO, then the records — newline-separated TXT records that a
// synthetic zone serves for every name. Each input goes
//  1. through the validator, and what it accepts through recordForLibspf2 into libspf2's own
//     compiler, whose compiled size must equal ours (the model behind the CVE-2023-42118 guard);
//  2. through checkSpf, over a zone whose TXT records are the fuzzed ones (so includes, redirects
//     and exp= all meet them again) and whose other answers vary with a hash of the name.
// Crashes, sanitizer reports and broken invariants (abort) are findings.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/c/spf2.h"
#include "filters/spf/spf_check.h"
#include "filters/spf/spf_libspf2_record.h"
#include "filters/spf/spf_names.h"
#include "filters/spf/spf_record.h"

namespace mailgate {
namespace {

void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

uint64_t hashOf(std::string_view text) {
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

class FuzzDns final : public DnsLookup {
 public:
  explicit FuzzDns(std::vector<std::string> txt) : txt_(std::move(txt)) {}

  DnsRecordSet query(std::string_view name, uint16_t type) const override {
    ++queries_;
    // What the layer sends is always a possible name: never the /0 marker, never over 253.
    require(name.find('\x01') == std::string_view::npos, "marker reached the resolver");
    require(hasValidLabels(name), "invalid name reached the resolver");
    DnsRecordSet records;
    uint64_t hash = hashOf(name) ^ type;
    switch (hash % 11) {
      case 0: records.status = DnsStatus::NxDomain; return records;
      case 1: records.status = DnsStatus::NoData; return records;
      case 2:
        if (hash % 7 == 0) {
          records.status = hash % 2 ? DnsStatus::Timeout : DnsStatus::ServFail;
          return records;
        }
        break;
      default: break;
    }
    records.status = DnsStatus::Ok;
    std::string base(name);
    switch (type) {
      case dns_type::TXT: records.txt = txt_; break;
      case dns_type::A: records.addresses = {"192.0.2.1", "198.51.100.1", "not-an-address"}; break;
      case dns_type::AAAA: records.addresses = {"2001:db8::1", "2001:db8::2"}; break;
      case dns_type::MX:
        for (unsigned i = 0; i < (hash % 5 == 0 ? 12u : 3u); ++i) {
          records.mx.emplace_back(i, "mx" + std::to_string(i) + "." + base);
        }
        records.mx.emplace_back(0, "");  // a null MX among them
        break;
      case dns_type::PTR:
        for (unsigned i = 0; i < (hash % 3 == 0 ? 12u : 2u); ++i) records.names.push_back("h" + std::to_string(i) + ".example.com");
        records.names.push_back("bad name\x01.example.com");
        break;
      default: records.status = DnsStatus::NoData; break;
    }
    return records;
  }

  unsigned queries() const { return queries_; }

 private:
  std::vector<std::string> txt_;
  mutable unsigned queries_ = 0;
};

std::vector<std::string> splitLines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (true) {
    size_t end = text.find('\n', start);
    lines.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return lines;
    start = end + 1;
  }
}

void compileWithLibspf2(const std::string& record) {
  static Spf2Server server(SPF_server_new(SPF_DNS_ZONE, 0));
  SpfParseResult parsed = parseSpfRecord(record);
  if (!parsed.record) return;
  for (int family : {AF_INET, AF_INET6}) {
    Libspf2Record text = recordForLibspf2(*parsed.record, family);
    if (!text.text) continue;
    Spf2Response response(SPF_response_new(nullptr));
    SPF_record_t* raw = nullptr;
    SPF_errcode_t error = SPF_record_compile(server.get(), response.get(), &raw, text.text->c_str());
    Spf2Record compiled(raw);
    require(error == SPF_E_SUCCESS, "libspf2 refused a record we wrote for it");
    require(compiled->mech_len == text.compiled_bytes, "compiled size differs from libspf2's");
  }
}

}  // namespace
}  // namespace mailgate

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // libspf2 logs warnings to stderr; checkSpf silences them, do it before the first compile too.
  SPF_warning_handler = nullptr;
  SPF_info_handler = nullptr;
  SPF_debug_handler = nullptr;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields;
  for (int i = 0; i < 3; ++i) {
    size_t end = input.find('\n');
    if (end == std::string_view::npos) return 0;
    fields.emplace_back(input.substr(0, end));
    input.remove_prefix(end + 1);
  }
  std::vector<std::string> records = splitLines(input);
  for (const std::string& record : records) compileWithLibspf2(record);

  static const char* kClients[] = {"192.0.2.1", "2001:db8::1", "::ffff:198.51.100.1", "127.0.0.1"};
  std::string ip = parseClientAddress(fields[0]) ? fields[0] : kClients[hashOf(fields[0]) % 4];
  FuzzDns dns(records);
  SpfLimits limits;
  SpfOutcome outcome = checkSpf(dns, SpfRequest{ip, fields[1], fields[2], "mx.receiver.example"}, limits);
  require(dns.queries() <= limits.total_queries, "query cap passed");
  require(outcome.dns_queries == dns.queries(), "query count differs");
  require(spfResultName(outcome.result) != nullptr, "no result name");
  require(outcome.explanation.empty() || outcome.result == SpfResult::Fail, "explanation without fail");
  require(outcome.explanation.size() <= 400, "explanation too long");
  for (char c : outcome.explanation) require(c >= 0x20 && c <= 0x7e, "explanation not printable ASCII");
  return 0;
}
