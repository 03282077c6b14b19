#pragma once
// Text that came from someone else (DNS, the client, the message) on its way into a header we
// add: only printable ASCII, quoted where RFC 5322 wants a quoted-string.

#include <cstddef>
#include <string>
#include <string_view>

namespace mailgate {

// RFC 5322 quoted-string for header parameters, dropping what cannot be quoted.
std::string quoted(std::string_view text);

// Printable ASCII only, at most `max` characters. Inside a header comment, parentheses would end
// or nest the comment (RFC 5322 §3.2.2), so they go too.
std::string printable(std::string_view text, std::size_t max, bool in_comment = true);

// An RFC 8601 property value (a domain, a selector, b=): a token when it is one, else quoted.
std::string propertyValue(std::string_view text);

}  // namespace mailgate
