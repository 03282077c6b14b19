#pragma once
// Syntax checks shared by the config module's own files (units.cpp defines them, config.cpp and
// settings.cpp use them). Not an interface for other modules: include config.h instead.

#include <string>
#include <string_view>

#include "gateway/util/ascii.h"

namespace mailgate::config_detail {

// RFC 1035 §2.3.1 with RFC 1123 §2.1 (labels may start with a digit): letters, digits and
// hyphens, no hyphen at either end of a label, labels of 1..63 octets, at most 253 octets in all.
bool isDomainName(std::string_view name);
// An IPv4 dotted quad or an IPv6 address without brackets, as inet_pton(3) reads them.
bool isIpLiteral(std::string_view host);
// "10.0.0.0/8" (prefix 0..32) or "2001:db8::/32" (prefix 0..128).
bool isCidr(std::string_view text);

// "\"text\"", so that a value with spaces or an empty value is visible in a message.
std::string quoted(std::string_view text);

}  // namespace mailgate::config_detail
