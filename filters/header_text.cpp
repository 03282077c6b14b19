#include "filters/header_text.h"

#include <algorithm>

namespace mailgate {
namespace {

bool isAlnum(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// RFC 2045 §5.1: any CHAR except SPACE, CTLs and tspecials.
bool isTokenChar(unsigned char c) {
  constexpr std::string_view tspecials = "()<>@,;:\\\"/[]?=";
  return c > 0x20 && c < 0x7f && tspecials.find(static_cast<char>(c)) == std::string_view::npos;
}

// RFC 5322 §3.2.3 atext.
bool isAtext(unsigned char c) {
  constexpr std::string_view specials = "()<>[]:;@\\,.\"";
  return c > 0x20 && c < 0x7f && specials.find(static_cast<char>(c)) == std::string_view::npos;
}

// RFC 5322 §3.2.3 dot-atom-text: 1*atext *("." 1*atext).
bool isDotAtom(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.' || text.find("..") != std::string_view::npos)
    return false;
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return c == '.' || isAtext(c); });
}

}  // namespace

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
    if (in_comment && (c == '(' || c == ')' || c == '\\')) continue;
    out += static_cast<char>(c);
  }
  return out;
}

bool isDomainName(std::string_view text) {
  if (text.size() > 253) return false;
  std::size_t labels = 0;
  while (true) {
    std::size_t dot = text.find('.');
    std::string_view label = text.substr(0, dot);
    if (label.empty() || label.size() > 63) return false;
    if (!isAlnum(label.front()) || !isAlnum(label.back())) return false;
    if (!std::all_of(label.begin(), label.end(), [](unsigned char c) { return isAlnum(c) || c == '-'; })) return false;
    ++labels;
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);
  }
  return labels >= 2;
}

std::optional<std::string> propertyValue(std::string_view text) {
  if (text.empty() || text.size() > max_property_octets) return std::nullopt;
  // What a quoted-string cannot carry as it is (RFC 5322 §3.2.4: qtext and quoted-pair are
  // printable ASCII and WSP; a folded line or a control character would change the header).
  if (!std::all_of(text.begin(), text.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; }))
    return std::nullopt;
  if (std::all_of(text.begin(), text.end(), isTokenChar)) return std::string(text);
  // RFC 8601 §2.2: [ [ local-part ] "@" ] domain-name also stands unquoted; of the local-parts,
  // only dot-atoms of token characters, so that no "=" or "/" stands unquoted for a reader to trip on.
  std::size_t at = text.rfind('@');
  std::string_view local = text.substr(0, at == std::string_view::npos ? 0 : at);
  if (at != std::string_view::npos && isDomainName(text.substr(at + 1)) &&
      (local.empty() || (isDotAtom(local) && std::all_of(local.begin(), local.end(), isTokenChar))))
    return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string propertySpec(std::string_view property, std::string_view text) {
  auto value = propertyValue(text);
  return value ? " " + std::string(property) + "=" + *value : std::string();
}

}  // namespace mailgate
