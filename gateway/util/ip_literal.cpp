#include "gateway/util/ip_literal.h"

#include <arpa/inet.h>

namespace mailgate {

std::optional<IpLiteral> IpLiteral::parse(std::string_view text) {
  // inet_pton reads a C string: a NUL inside the text would hide the rest.
  if (text.contains('\0')) return std::nullopt;
  std::string copy(text);
  IpLiteral address;
  if (inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) return address;
  address.v6 = true;
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) == 1) return address;
  return std::nullopt;
}

std::string IpLiteral::text() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buffer, sizeof buffer);
  return buffer;
}

std::string IpLiteral::reverseName() const {
  std::string name;
  if (!v6) {
    for (int i = 3; i >= 0; --i) name += std::to_string(bytes[i]) + ".";
    return name + "in-addr.arpa";
  }
  constexpr std::string_view hex = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    name += hex[bytes[i] & 15];
    name += '.';
    name += hex[bytes[i] >> 4];
    name += '.';
  }
  return name + "ip6.arpa";
}

}  // namespace mailgate
