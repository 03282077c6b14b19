#pragma once
// Text to UTF-8: header values (RFC 2047 words, 8-bit text) and body parts in their declared
// charset, through GMime's decoders and charset filter.

#include <string>
#include <string_view>

namespace mailgate::rules {

// One header value as SpamAssassin's Node::_decode_header decodes it: unfolded, trimmed, RFC 2047
// words decoded to UTF-8 (not in Received, Message-ID, Date, References, In-Reply-To,
// MIME-Version and List-*, which carry none), other 8-bit text taken as UTF-8 or, when it is not,
// as Windows-1252.
std::string decodeHeaderValue(std::string_view name, std::string_view raw);
// `bytes` in `charset` converted to UTF-8; unknown charsets, and text labelled ASCII or UTF-8
// that is not, are read as Windows-1252 (the commonest mislabel, and a superset of Latin-1).
std::string toUtf8(std::string_view bytes, std::string_view charset);
bool isValidUtf8(std::string_view text);

}  // namespace mailgate::rules
