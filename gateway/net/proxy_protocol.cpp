#include "gateway/net/proxy_protocol.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace mailgate {
namespace {

constexpr std::string_view v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr std::size_t v1_max_octets = 107;  // proxy-protocol.txt §2.1

std::expected<std::optional<ProxyHeader>, std::string> fail(std::string why) {
  return std::unexpected("PROXY header: " + std::move(why));
}

bool parsePort(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  unsigned value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

std::expected<std::optional<ProxyHeader>, std::string> parseV1(std::string_view bytes) {
  std::size_t crlf = bytes.find("\r\n");
  if (crlf == std::string_view::npos) {
    if (bytes.size() >= v1_max_octets) return fail("v1 line too long");
    return std::nullopt;
  }
  if (crlf + 2 > v1_max_octets) return fail("v1 line too long");
  std::string_view line = bytes.substr(0, crlf);
  std::array<std::string_view, 6> words{};
  std::size_t count = 0;
  while (!line.empty() && count < words.size()) {
    std::size_t space = line.find(' ');
    words[count++] = line.substr(0, space);
    line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  }
  ProxyHeader header;
  header.length = crlf + 2;
  if (count >= 2 && words[1] == "UNKNOWN") return header;  // the rest of the line is ignored
  if (count != 6 || !line.empty()) return fail("v1 line malformed");
  int family = words[1] == "TCP4" ? AF_INET : words[1] == "TCP6" ? AF_INET6 : 0;
  if (family == 0) return fail("v1 protocol must be TCP4, TCP6 or UNKNOWN");
  unsigned char address[16];
  std::string source(words[2]), destination(words[3]);
  if (inet_pton(family, source.c_str(), address) != 1 || inet_pton(family, destination.c_str(), address) != 1)
    return fail("v1 address malformed");
  uint16_t source_port = 0, destination_port = 0;
  if (!parsePort(words[4], source_port) || !parsePort(words[5], destination_port)) return fail("v1 port malformed");
  header.source_ip = source;
  header.source_port = source_port;
  return header;
}

std::expected<std::optional<ProxyHeader>, std::string> parseV2(std::string_view bytes) {
  if (bytes.size() < 16) return std::nullopt;
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  if ((byte(12) >> 4) != 2) return fail("v2 version is not 2");
  unsigned command = byte(12) & 0x0f;
  std::size_t length = (std::size_t{byte(14)} << 8) | byte(15);
  if (16 + length > max_proxy_header_octets) return fail("v2 header too long");
  if (bytes.size() < 16 + length) return std::nullopt;
  ProxyHeader header;
  header.length = 16 + length;
  if (command != 0 && command != 1) return fail("v2 command unknown");
  // proxy-protocol.txt §2.2: the 14th byte is an address family (high nibble: UNSPEC, INET,
  // INET6, UNIX) and a transport (low nibble: UNSPEC, STREAM, DGRAM); "other values are
  // unspecified and must not be emitted in version 2 of this protocol and must be rejected as
  // invalid by receivers", and these are the combinations it expects. Held for LOCAL too, whose
  // address block is then ignored: a header that breaks the specification is trusted in no part.
  unsigned char family_transport = byte(13);
  switch (family_transport) {
    case 0x00:  // UNSPEC
    case 0x11:  // TCP over IPv4
    case 0x12:  // UDP over IPv4
    case 0x21:  // TCP over IPv6
    case 0x22:  // UDP over IPv6
    case 0x31:  // UNIX stream
    case 0x32:  // UNIX datagram
      break;
    default: {
      char value[8];
      std::snprintf(value, sizeof value, "0x%02x", family_transport);
      return fail(std::string("v2 address family and transport unknown (") + value + ")");
    }
  }
  if (command == 0) return header;  // LOCAL: the proxy's own connection (health check)
  unsigned family = family_transport >> 4;
  char text[INET6_ADDRSTRLEN] = {0};
  const char* addresses = bytes.data() + 16;
  if (family == 1) {  // AF_INET: 4 + 4 + 2 + 2
    if (length < 12) return fail("v2 IPv4 block too short");
    inet_ntop(AF_INET, addresses, text, sizeof text);
    header.source_port = static_cast<uint16_t>((byte(16 + 8) << 8) | byte(16 + 9));
  } else if (family == 2) {  // AF_INET6: 16 + 16 + 2 + 2
    if (length < 36) return fail("v2 IPv6 block too short");
    inet_ntop(AF_INET6, addresses, text, sizeof text);
    header.source_port = static_cast<uint16_t>((byte(16 + 32) << 8) | byte(16 + 33));
  } else {
    return header;  // UNSPEC or UNIX: no address to take (§2.2: use the real connection's)
  }
  header.source_ip = text;
  return header;
}

}  // namespace

std::expected<std::optional<ProxyHeader>, std::string> parseProxyHeader(std::string_view bytes) {
  std::size_t compare = std::min(bytes.size(), v2_signature.size());
  if (bytes.substr(0, compare) == v2_signature.substr(0, compare)) {
    if (bytes.size() < v2_signature.size()) return std::nullopt;
    return parseV2(bytes);
  }
  constexpr std::string_view v1_prefix = "PROXY ";
  compare = std::min(bytes.size(), v1_prefix.size());
  if (bytes.substr(0, compare) != v1_prefix.substr(0, compare)) return fail("missing (the connection must start with one)");
  if (bytes.size() < v1_prefix.size()) return std::nullopt;
  return parseV1(bytes);
}

bool cidrContains(std::string_view cidr, std::string_view ip) {
  std::size_t slash = cidr.find('/');
  std::string network(cidr.substr(0, slash));
  unsigned bits = 0;
  bool has_length = slash != std::string_view::npos;
  if (has_length) {
    std::string_view length = cidr.substr(slash + 1);
    auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), bits);
    if (error != std::errc() || end != length.data() + length.size()) return false;
  }
  unsigned char net[16], address[16];
  std::string text(ip);
  std::size_t size = 0;
  if (inet_pton(AF_INET, network.c_str(), net) == 1) {
    size = 4;
    if (inet_pton(AF_INET, text.c_str(), address) != 1) {
      unsigned char mapped[16];
      static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (inet_pton(AF_INET6, text.c_str(), mapped) != 1 || std::memcmp(mapped, prefix, 12) != 0) return false;
      std::memcpy(address, mapped + 12, 4);
    }
  } else if (inet_pton(AF_INET6, network.c_str(), net) == 1) {
    size = 16;
    if (inet_pton(AF_INET6, text.c_str(), address) != 1) return false;
  } else {
    return false;
  }
  if (!has_length) bits = static_cast<unsigned>(size * 8);
  if (bits > size * 8) return false;
  for (std::size_t i = 0; i < size && bits > 0; ++i) {
    unsigned take = std::min(bits, 8u);
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - take));
    if ((net[i] & mask) != (address[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

}  // namespace mailgate
