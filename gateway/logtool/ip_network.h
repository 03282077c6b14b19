#pragma once
// --client's IP address or CIDR network, matched against a record's client.ip, and the network
// --summary counts a client in.

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::logtool {

// An IPv4 or IPv6 address in network order; IPv4 in the first four octets.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> octets{};

  // "192.0.2.7", "2001:db8::1", "[2001:db8::1]"; an IPv4-mapped IPv6 address ("::ffff:192.0.2.7",
  // RFC 4291 §2.5.5.2) is read as the IPv4 address it carries, as a dual-stack socket reports it.
  static std::optional<IpAddress> parse(std::string_view text);
};

class IpNetwork {
 public:
  // "192.0.2.7" (that address alone), "192.0.2.0/24", "2001:db8::/32". Host bits past the prefix
  // are ignored, as `ip route` does ("192.0.2.7/24" is 192.0.2.0/24).
  static std::expected<IpNetwork, std::string> parse(std::string_view text);

  bool contains(const IpAddress& address) const;
  bool contains(std::string_view address) const;
  // For an index to narrow by (the decision history).
  const IpAddress& base() const { return base_; }
  unsigned prefix() const { return prefix_; }

 private:
  IpAddress base_;
  unsigned prefix_ = 0;
};

// The network --summary groups clients by: /24 for IPv4, /48 for IPv6 (the usual size of one
// sender's allocation: one organisation, one botnet-infected subnet). "192.0.2.0/24",
// "2001:db8:1::/48"; the text itself when it is no address.
std::string summaryNetworkOf(std::string_view address);

}  // namespace mailgate::logtool
