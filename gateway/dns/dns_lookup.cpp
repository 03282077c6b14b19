#include "gateway/dns/dns_lookup.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <optional>

namespace mailgate {
namespace {

constexpr std::size_t max_label_octets = 63;  // RFC 1035 §2.3.4; 0xC0 and up would be a pointer
constexpr std::size_t ipv4_octets = 4;
constexpr std::size_t ipv6_octets = 16;

uint8_t octet(std::string_view data, std::size_t at) { return static_cast<uint8_t>(data[at]); }

// An uncompressed wire name (RFC 1035 §3.1) starting at `offset`, which it moves past the name.
// Names inside rdata are never compressed in what resolvers hand out (RFC 3597 §4 forbids it for
// all but the well-known types, and libunbound expands those), so a pointer is malformed here.
std::optional<std::string> readName(std::string_view rdata, std::size_t& offset) {
  std::string name;
  for (;;) {
    if (offset >= rdata.size()) return std::nullopt;
    std::size_t length = octet(rdata, offset++);
    if (length == 0) return name;
    if (length > max_label_octets || offset + length > rdata.size()) return std::nullopt;
    if (!name.empty()) name += '.';
    name.append(rdata.substr(offset, length));
    offset += length;
  }
}

// RFC 1035 §3.3.14: one or more <character-string>s, each a length octet and that many octets.
bool addText(DnsRecordSet& set, std::string_view rdata) {
  std::vector<std::string> strings;
  std::string joined;
  for (std::size_t offset = 0; offset < rdata.size();) {
    std::size_t length = octet(rdata, offset++);
    if (offset + length > rdata.size()) return false;
    strings.emplace_back(rdata.substr(offset, length));
    joined += strings.back();
    offset += length;
  }
  set.txt.push_back(std::move(joined));
  set.txt_strings.push_back(std::move(strings));
  return true;
}

bool addAddress(DnsRecordSet& set, int family, std::size_t octets, std::string_view rdata) {
  if (rdata.size() != octets) return false;
  char text[INET6_ADDRSTRLEN];
  if (::inet_ntop(family, rdata.data(), text, sizeof text) == nullptr) return false;
  set.addresses.emplace_back(text);
  return true;
}

bool addMx(DnsRecordSet& set, std::string_view rdata) {  // RFC 1035 §3.3.9
  if (rdata.size() < 3) return false;
  auto preference = static_cast<uint16_t>(octet(rdata, 0) << 8 | octet(rdata, 1));
  std::size_t offset = 2;
  auto exchange = readName(rdata, offset);
  if (!exchange || offset != rdata.size()) return false;
  set.mx.emplace_back(preference, std::move(*exchange));
  return true;
}

bool addPtr(DnsRecordSet& set, std::string_view rdata) {  // RFC 1035 §3.3.12
  std::size_t offset = 0;
  auto name = readName(rdata, offset);
  if (!name || offset != rdata.size()) return false;
  set.names.push_back(std::move(*name));
  return true;
}

uint16_t read16(std::string_view data, std::size_t at) {
  return static_cast<uint16_t>(octet(data, at) << 8 | octet(data, at + 1));
}

// Moves `offset` past a name that may end in a compression pointer (RFC 1035 §4.1.4).
bool skipName(std::string_view message, std::size_t& offset) {
  for (;;) {
    if (offset >= message.size()) return false;
    std::size_t length = octet(message, offset);
    if ((length & 0xC0) == 0xC0) {
      offset += 2;
      return offset <= message.size();
    }
    if (length > max_label_octets) return false;
    offset += 1 + length;
    if (length == 0) return true;
  }
}

}  // namespace

const char* dnsTypeName(uint16_t type) {
  switch (type) {
    case dns_type::A: return "A";
    case dns_type::AAAA: return "AAAA";
    case dns_type::MX: return "MX";
    case dns_type::PTR: return "PTR";
    case dns_type::TXT: return "TXT";
    case dns_type::SPF: return "SPF";
  }
  return "?";
}

const char* dnsStatusName(DnsStatus status) {
  switch (status) {
    case DnsStatus::Ok: return "ok";
    case DnsStatus::NoData: return "nodata";
    case DnsStatus::NxDomain: return "nxdomain";
    case DnsStatus::ServFail: return "servfail";
    case DnsStatus::Timeout: return "timeout";
    case DnsStatus::Error: return "error";
  }
  return "error";
}

bool addRecordData(DnsRecordSet& set, uint16_t type, std::string_view rdata) {
  switch (type) {
    case dns_type::TXT:
    case dns_type::SPF: return addText(set, rdata);  // RFC 4408 §3.1.1: type SPF has TXT's format
    case dns_type::A: return addAddress(set, AF_INET, ipv4_octets, rdata);
    case dns_type::AAAA: return addAddress(set, AF_INET6, ipv6_octets, rdata);
    case dns_type::MX: return addMx(set, rdata);
    case dns_type::PTR: return addPtr(set, rdata);
    default: return true;
  }
}

std::optional<int> addAnswerSection(DnsRecordSet& set, std::string_view message, uint16_t type) {
  constexpr std::size_t header_octets = 12, question_tail = 4, record_tail = 10;
  constexpr uint16_t class_in = 1;
  if (message.size() < header_octets) return std::nullopt;
  int rcode = octet(message, 3) & 0x0F;
  uint16_t questions = read16(message, 4), answers = read16(message, 6);
  std::size_t offset = header_octets;
  for (uint16_t i = 0; i < questions; ++i) {
    if (!skipName(message, offset)) return std::nullopt;
    offset += question_tail;
  }
  for (uint16_t i = 0; i < answers; ++i) {
    if (!skipName(message, offset) || offset + record_tail > message.size()) return std::nullopt;
    uint16_t record_type = read16(message, offset), record_class = read16(message, offset + 2);
    std::size_t length = read16(message, offset + 8);
    offset += record_tail;
    if (offset + length > message.size()) return std::nullopt;
    if (record_type == type && record_class == class_in && !addRecordData(set, type, message.substr(offset, length)))
      return std::nullopt;
    offset += length;
  }
  return rcode;
}

}  // namespace mailgate
