#pragma once
// Domain names as SPF uses them: identities (RFC 7208 §4.3), domain-spec ends (§7.1) and the
// names that macro expansion produces (§7.3), plus the client address in the forms the macros
// want (§7.2, §5 on IPv4-mapped addresses).

#include <netinet/in.h>

#include <optional>
#include <string>
#include <string_view>

namespace mailgate {

constexpr size_t kMaxDomainOctets = 253;  // RFC 7208 §7.3, RFC 1035 §2.3.4 (presentation form)
constexpr size_t kMaxLabelOctets = 63;    // RFC 1035 §2.3.4
constexpr size_t kMaxLocalPartOctets = 64;  // RFC 5321 §4.5.3.1.1

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool isToplabel(std::string_view label);

// Labels of 1-63 octets, at most 253 octets in all (one trailing dot ignored).
bool hasValidLabels(std::string_view name);

// A domain that can be an SPF identity (§4.3): letters, digits, "-" and "_" in valid labels, at
// least two labels, a top label that is not all digits, no address literal. The trailing dot,
// if any, is removed.
std::optional<std::string> identityDomain(std::string_view name);

// A name produced by macro expansion, made ready for a query: one trailing dot removed, the left
// side truncated to 253 octets (§7.3), and refused (nullopt) when a label is empty or longer
// than 63 octets or a byte is not printable ASCII — such a name cannot exist, and since it can
// come from the sender's own input it must not turn a result into permerror.
std::optional<std::string> queryName(std::string_view expanded);

struct ClientAddress {
  int family = AF_UNSPEC;  // AF_INET (also for IPv4-mapped IPv6) or AF_INET6
  in_addr v4{};
  in6_addr v6{};
  std::string pretty;   // %{c}: "192.0.2.1", "2001:db8::1"
  std::string dotted;   // %{i}: "192.0.2.1", or 32 nibbles "1.0.0.0.….8.b.d.0.1.0.0.2"
  std::string version;  // %{v}: "in-addr" or "ip6"
  std::string reverse;  // the PTR name: "1.2.0.192.in-addr.arpa", "….ip6.arpa"
};

// "192.0.2.1", "2001:db8::1", "[2001:db8::1]", "::ffff:192.0.2.1" (normalized to IPv4, §5).
std::optional<ClientAddress> parseClientAddress(std::string_view text);

bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::string toLower(std::string_view text);

}  // namespace mailgate
