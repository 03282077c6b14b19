#pragma once
// Text that came from someone else (DNS, the client, the message) on its way into a header we
// add: only printable ASCII, quoted where RFC 5322 wants a quoted-string, and values of
// Authentication-Results properties held to RFC 8601's grammar, so that none of it can open a
// comment or add a property of its own.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate {

// A property value longer than this is left out: an envelope address (RFC 5321 §4.5.3.1: a
// 64-octet local-part, "@", a 255-octet domain) is the longest value anyone has a use for.
constexpr std::size_t max_property_octets = 64 + 1 + 255;

// RFC 5322 quoted-string for header parameters, dropping what cannot be quoted.
std::string quoted(std::string_view text);

// Printable ASCII only, at most `max` characters. Inside a header comment, parentheses would end
// or nest the comment and a backslash would quote the character after it, the closing ")" too
// (RFC 5322 §3.2.2), so they go too.
std::string printable(std::string_view text, std::size_t max, bool in_comment = true);

// RFC 6376 §3.5 domain-name (the one RFC 8601 §2.2 pvalue names): sub-domain 1*("." sub-domain),
// each an RFC 5321 §4.1.2 LDH label (letter or digit at both ends, hyphens inside) of at most 63
// octets (RFC 1035 §2.3.4), the whole at most 253 octets. No trailing dot.
bool isDomainName(std::string_view text);

// An RFC 8601 §2.2 pvalue for a property from outside (a domain, a selector, an address, b=):
// as it is when it is an RFC 2045 token or dot-atom "@" domain-name, else an RFC 5322
// quoted-string. nullopt when it cannot be written as it is (empty, longer than
// max_property_octets, control characters or octets outside ASCII): it is then left out, never
// changed into a value it was not.
std::optional<std::string> propertyValue(std::string_view text);

// " ptype.property=pvalue" (`property` is ours, e.g. "header.d"), ready to append to a resinfo;
// "" when the value must be left out (see propertyValue).
std::string propertySpec(std::string_view property, std::string_view text);

}  // namespace mailgate
