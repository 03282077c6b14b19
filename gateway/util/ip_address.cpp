#include "gateway/util/ip_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace mailgate {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string terminated(text);
  IpAddress address;
  if (inet_pton(AF_INET, terminated.c_str(), address.bytes.data()) == 1) return address;
  unsigned char v6[16];
  if (inet_pton(AF_INET6, terminated.c_str(), v6) != 1) return std::nullopt;
  static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6, mapped_prefix, 12) == 0) {
    std::memcpy(address.bytes.data(), v6 + 12, 4);
    return address;
  }
  address.v4 = false;
  std::memcpy(address.bytes.data(), v6, 16);
  return address;
}

std::string IpAddress::text() const {
  char out[INET6_ADDRSTRLEN] = {0};
  inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), out, sizeof out);
  return out;
}

std::string IpAddress::reversed() const {
  std::string name;
  if (v4) {
    for (int i = 3; i >= 0; --i) name += std::to_string(bytes[static_cast<std::size_t>(i)]) + (i ? "." : "");
    return name;
  }
  static const char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    uint8_t byte = bytes[static_cast<std::size_t>(i)];
    name += hex[byte & 0x0f];
    name += '.';
    name += hex[byte >> 4];
    if (i) name += '.';
  }
  return name;
}

IpAddress masked(const IpAddress& address, unsigned bits) {
  IpAddress out = address;
  for (std::size_t i = 0; i < out.octets(); ++i) {
    unsigned keep = bits >= 8 ? 8 : bits;
    out.bytes[i] = keep == 0 ? 0 : static_cast<uint8_t>(out.bytes[i] & (0xff << (8 - keep)));
    bits -= keep;
  }
  return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  std::size_t slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  // A mapped IPv6 network written with its v6 length is taken as the IPv4 network it covers.
  bool written_v6 = text.substr(0, slash).find(':') != std::string_view::npos;
  unsigned max_bits = static_cast<unsigned>(address->octets() * 8);
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view length = text.substr(slash + 1);
    auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), bits);
    if (error != std::errc() || end != length.data() + length.size() || length.empty()) return std::nullopt;
    if (address->v4 && written_v6) {
      if (bits < 96) return std::nullopt;
      bits -= 96;
    }
    if (bits > max_bits) return std::nullopt;
  }
  Cidr cidr{masked(*address, bits), bits};
  if (!(cidr.network == *address)) return std::nullopt;
  return cidr;
}

bool Cidr::contains(const IpAddress& address) const {
  return address.v4 == network.v4 && masked(address, bits) == network;
}

std::string Cidr::text() const { return network.text() + "/" + std::to_string(bits); }

bool cidrContains(std::string_view cidr, std::string_view ip) {
  // Host bits in the network are tolerated here (server.proxy_sources predates the strict form
  // and is checked at load); the comparison masks both sides.
  std::size_t slash = cidr.find('/');
  auto network = IpAddress::parse(cidr.substr(0, slash));
  auto address = IpAddress::parse(ip);
  if (!network || !address || network->v4 != address->v4) return false;
  unsigned bits = static_cast<unsigned>(network->octets() * 8);
  if (slash != std::string_view::npos) {
    std::string_view length = cidr.substr(slash + 1);
    unsigned parsed = 0;
    auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), parsed);
    if (error != std::errc() || end != length.data() + length.size()) return false;
    bool written_v6 = cidr.substr(0, slash).find(':') != std::string_view::npos;
    if (network->v4 && written_v6) parsed = parsed >= 96 ? parsed - 96 : 0;
    if (parsed > bits) return false;
    bits = parsed;
  }
  return masked(*network, bits) == masked(*address, bits);
}

}  // namespace mailgate
