#pragma once
// The tags of a DKIM-Signature that say who signed (RFC 6376 §3.5): d= (the SDID), s= (the
// selector) and i= (the AUID). libopendkim parses them but does not hold them to their grammar:
// a d= of "legitimate.com(.attacker.com" verifies against a key published under that name, and
// would reach Authentication-Results, where "(" opens a comment and a reader sees
// "header.d=legitimate.com". So each signature's identifiers are checked here, and a signature
// whose identifiers are not valid is a permerror whatever its cryptography says.

#include <optional>
#include <string>
#include <string_view>

namespace mailgate {

// RFC 6376 §3.5: d= is a domain-name (isDomainName in filters/header_text.h).
bool isDkimDomain(std::string_view text);
// RFC 6376 §3.1 / §3.5: selector = sub-domain *("." sub-domain): LDH labels, one or more.
bool isDkimSelector(std::string_view text);
// RFC 6376 §3.5: i= is [ Local-part ] "@" domain-name, written in dkim-quoted-printable (§2.11),
// with Local-part of RFC 5321 §4.1.2 (UTF-8 allowed, RFC 6531 §3.3); its domain is `domain` or a
// subdomain of it (compared ignoring case).
bool isDkimIdentity(std::string_view identity, std::string_view domain);

// Why the signature's identifiers are not valid ("d= is not a valid domain name"), or
// nullopt when they are. `identity` is i= as written, nullopt when the signature has none. The
// reason names the tag, never its value: the value is what cannot be trusted in a header.
std::optional<std::string> invalidDkimIdentifiers(std::string_view domain, std::string_view selector,
                                                  std::optional<std::string_view> identity);

}  // namespace mailgate
