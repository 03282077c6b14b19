#include "filters/attachments/attachment_name.h"

#include <fnmatch.h>

#include <cstdint>

namespace mailgate {
namespace {

// The code point of the UTF-8 sequence at `i` and its length; an invalid lead byte is taken
// alone (it cannot hide anything the glob would then miss).
std::pair<uint32_t, std::size_t> decodeAt(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  std::size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : (lead >> 3) == 0x1e ? 4 : 1;
  if (length == 1 || i + length > text.size()) return {lead, 1};
  uint32_t code = lead & (0x7f >> length);
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return {lead, 1};
    code = (code << 6) | (byte(i + k) & 0x3f);
  }
  return {code, length};
}

// Unicode format characters that change how a name is shown but not what it is: the bidi
// embeddings, overrides and isolates (UAX #9), marks, zero-width space, joiners, BOM.
bool hidesText(uint32_t code) {
  return (code >= 0x200b && code <= 0x200f) || (code >= 0x202a && code <= 0x202e) ||
         (code >= 0x2066 && code <= 0x2069) || code == 0x061c || code == 0xfeff;
}

}  // namespace

std::string normalisedFileName(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size();) {
    auto [code, length] = decodeAt(name, i);
    if (!hidesText(code) && code >= 0x20 && code != 0x7f) out.append(name.substr(i, length));
    i += length;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '.' || out.back() == '\t')) out.pop_back();
  std::size_t start = out.find_first_not_of(" \t");
  return start == std::string::npos ? std::string() : out.substr(start);
}

bool globMatches(std::string_view pattern, std::string_view name) {
  return fnmatch(std::string(pattern).c_str(), std::string(name).c_str(), FNM_CASEFOLD) == 0;
}

std::string replySafeName(std::string_view name) {
  std::string out;
  std::size_t i = 0;
  while (i < name.size() && out.size() < max_reply_name_octets) {
    auto [code, length] = decodeAt(name, i);
    i += length;
    if (hidesText(code)) continue;
    out += code >= 0x20 && code < 0x7f && code != '"' && code != '\\' ? static_cast<char>(code) : '?';
  }
  if (i < name.size()) out.replace(out.size() - 3, 3, "...");
  return out;
}

}  // namespace mailgate
