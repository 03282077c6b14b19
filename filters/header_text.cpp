#include "filters/header_text.h"

#include <algorithm>

namespace mailgate {

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f) continue;
    if (c == '"' || c == '\\') out += '\\';
    out += static_cast<char>(c);
  }
  return out + "\"";
}

std::string printable(std::string_view text, std::size_t max, bool in_comment) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max) break;
    if (c < 0x20 || c >= 0x7f) continue;
    if (in_comment && (c == '(' || c == ')')) continue;
    out += static_cast<char>(c);
  }
  return out;
}

std::string propertyValue(std::string_view text) {
  // RFC 2045 token characters, plus '@' and '.' which RFC 8601 pvalue allows unquoted.
  constexpr std::string_view specials = "()<>,;:\\\"/[]?= ";
  bool token = !text.empty() && std::all_of(text.begin(), text.end(), [&](unsigned char c) {
    return c > 0x20 && c < 0x7f && (specials.find(static_cast<char>(c)) == std::string_view::npos);
  });
  return token ? std::string(text) : quoted(text.substr(0, 255));
}

}  // namespace mailgate
