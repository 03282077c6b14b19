#pragma once
// IP addresses and networks as the gateway compares them: IPv4-mapped IPv6 addresses
// (::ffff:192.0.2.1, what a dual-stack listener reports) are the IPv4 address they carry, so a
// block or allow entry written for IPv4 matches them.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate {

struct IpAddress {
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4
  bool v4 = true;

  static std::optional<IpAddress> parse(std::string_view text);
  std::size_t octets() const { return v4 ? 4 : 16; }
  std::string text() const;
  // The name a DNS list or PTR query asks under in-addr.arpa / ip6.arpa style: "1.2.0.192" for
  // 192.0.2.1, nibbles for IPv6 (RFC 5782 §2.1, §2.4), without the zone.
  std::string reversed() const;
  // The name its PTR records live at: "1.2.0.192.in-addr.arpa" (RFC 1035 §3.5), or 32 nibbles
  // under "ip6.arpa" (RFC 3596 §2.5).
  std::string reverseName() const { return reversed() + (v4 ? ".in-addr.arpa" : ".ip6.arpa"); }
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

struct Cidr {
  IpAddress network;  // with the host bits cleared
  unsigned bits = 32;

  // "192.0.2.0/24", "2001:db8::/32", or a plain address (all bits). Host bits set in the
  // network part are an error ("192.0.2.1/24"), so that a typo does not widen a list.
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& address) const;
  std::string text() const;
};

// The first `bits` bits of `address`, the rest zero.
IpAddress masked(const IpAddress& address, unsigned bits);

// "192.0.2.0/24" contains "192.0.2.7"; false when either does not parse. For lists read once and
// matched often, parse once with Cidr::parse instead.
bool cidrContains(std::string_view cidr, std::string_view ip);

}  // namespace mailgate
