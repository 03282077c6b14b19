#pragma once
// What a DNS-using stage asks of the resolver: one question, one answer set. The Resolver
// (libunbound) implements it for the gateway; tests may implement it over in-memory zones.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate {

// RFC 1035 / 3596 type codes used by the stages.
namespace dns_type {
constexpr uint16_t A = 1;
constexpr uint16_t PTR = 12;
constexpr uint16_t MX = 15;
constexpr uint16_t TXT = 16;
constexpr uint16_t AAAA = 28;
constexpr uint16_t SPF = 99;
}  // namespace dns_type

enum class DnsStatus {
  Ok,        // an answer with at least one record of the type asked
  NoData,    // the name exists, no record of that type (NOERROR, empty answer)
  NxDomain,  // the name does not exist (RCODE 3)
  ServFail,  // the server failed (SERVFAIL, REFUSED, or another error RCODE)
  Timeout,   // no answer within dns.timeout × (dns.retries + 1)
  Error,     // the question itself was bad (e.g. a name too long), or the resolver failed
};

const char* dnsTypeName(uint16_t type);      // "A", "AAAA", "MX", "PTR", "TXT", "SPF", else "?"
const char* dnsStatusName(DnsStatus status);  // "ok", "nodata", "nxdomain", "servfail", "timeout", "error"

struct DnsRecordSet {
  DnsStatus status = DnsStatus::Error;
  std::vector<std::string> txt;        // TXT/SPF: each record's character-strings concatenated
  std::vector<std::vector<std::string>> txt_strings;  // TXT/SPF: each record's strings as sent
  std::vector<std::string> addresses;  // A/AAAA: "192.0.2.1", "2001:db8::1"
  std::vector<std::pair<uint16_t, std::string>> mx;  // MX: preference, exchange (no final dot)
  std::vector<std::string> names;      // PTR: names (no final dot)
  std::string packet;                  // the whole answer in wire format (for libopendkim)
  std::string error;                   // what went wrong, for logs
};

class DnsLookup {
 public:
  virtual ~DnsLookup() = default;
  // Blocking: call on the thread pool, never on an event loop. Thread-safe.
  virtual DnsRecordSet query(std::string_view name, uint16_t type) const = 0;
};

// Decodes one record's rdata (wire format as in the answer section, names uncompressed) of `type`
// into `set`'s fields for that type: TXT/SPF strings, A/AAAA addresses, MX, PTR. Names come out as
// dotted text without the final dot, bytes kept as they are (the root name is ""). Returns false
// when the rdata is malformed; rdata of other types is accepted and ignored (see `packet`).
bool addRecordData(DnsRecordSet& set, uint16_t type, std::string_view rdata);

// Reads a whole DNS message (RFC 1035 §4.1): its RCODE, and the answer section's records of `type`
// (class IN) through addRecordData(). Meant for types whose rdata holds no names (TXT, SPF, A,
// AAAA): names inside rdata may be compressed in a message, and such rdata counts as malformed.
// nullopt when the message is malformed.
std::optional<int> addAnswerSection(DnsRecordSet& set, std::string_view message, uint16_t type);

}  // namespace mailgate
