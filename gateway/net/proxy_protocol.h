#pragma once
// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a load balancer
// sends before the SMTP session, carrying the real client's address. Pure parsing, no I/O.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate {

struct ProxyHeader {
  std::size_t length = 0;  // bytes the header took; the SMTP session starts after them
  // The client as the proxy saw it; absent for "PROXY UNKNOWN" / v2 LOCAL (health checks).
  std::optional<std::string> source_ip;
  uint16_t source_port = 0;
};

// v1 headers are at most 107 octets; v2 headers are 16 octets plus their length field, which we
// hold to this bound (TLVs beyond it are not needed and would cost memory per connection).
constexpr std::size_t max_proxy_header_octets = 536;

// nullopt: more bytes are needed. An error means the connection must be closed.
std::expected<std::optional<ProxyHeader>, std::string> parseProxyHeader(std::string_view bytes);

}  // namespace mailgate
