#pragma once
// An IP address written as text ("192.0.2.1", "2001:db8::1"), read as inet_pton(3) reads it, for
// the commands that take one from the operator (`mailgate check --ip`, `mailgate resolve ... PTR`).

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate {

struct IpLiteral {
  bool v6 = false;
  std::array<unsigned char, 16> bytes{};  // network order; an IPv4 address uses the first 4

  // nullopt unless `text` is a whole IPv4 dotted quad or IPv6 address (no brackets, no port).
  static std::optional<IpLiteral> parse(std::string_view text);
  // The canonical form, as the gateway names a connected client: "2001:db8::1".
  std::string text() const;
  // The name its PTR records live at: "1.2.0.192.in-addr.arpa" (RFC 1035 §3.5), or 32 nibbles
  // under "ip6.arpa" (RFC 3596 §2.5).
  std::string reverseName() const;
};

}  // namespace mailgate
