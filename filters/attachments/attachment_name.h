#pragma once
// File names as a sender may disguise them, made comparable: the decoded name (RFC 2231 and
// RFC 2047 undone by the MIME parser) without the characters that hide its real end — Unicode
// bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE shows "invoice<RLO>fdp.exe" as
// "invoiceexe.pdf"), zero-width characters — and without trailing blanks and dots (Windows drops
// them: "virus.exe . ." runs as "virus.exe"). Globs then match it case-insensitively.

#include <cstddef>
#include <string>
#include <string_view>

namespace mailgate {

// The name a glob is matched against (UTF-8 in, UTF-8 out).
std::string normalisedFileName(std::string_view name);

// Whether `name` matches the shell glob `pattern` (fnmatch(3) without FNM_PATHNAME, so "*" also
// crosses "/" in a path inside an archive), ignoring ASCII case.
bool globMatches(std::string_view pattern, std::string_view name);

// A name cut to fit a reply line: printable ASCII, each other character as "?", no quote or
// backslash (the name is quoted in the reply), at most max_reply_name_octets.
constexpr std::size_t max_reply_name_octets = 80;
std::string replySafeName(std::string_view name);

}  // namespace mailgate
