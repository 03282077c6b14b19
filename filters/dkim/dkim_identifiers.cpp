#include "filters/dkim/dkim_identifiers.h"

#include <algorithm>

#include "filters/header_text.h"
#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

bool isHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }  // RFC 2045: upper case

int hexValue(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }

// RFC 6376 §2.11 dkim-quoted-printable = *(FWS / hex-octet / dkim-safe-char): whitespace is not
// part of the value, "=XX" is the octet XX. nullopt when an "=" is not followed by two upper-case
// hex digits.
std::optional<std::string> decodeDkimQuotedPrintable(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      if (i + 2 >= text.size() || !isHexDigit(text[i + 1]) || !isHexDigit(text[i + 2])) return std::nullopt;
      out += static_cast<char>(hexValue(text[i + 1]) * 16 + hexValue(text[i + 2]));
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

// RFC 5321 §4.1.2 atext, with RFC 6531 §3.3's UTF8-non-ascii.
bool isAtext(unsigned char c) {
  constexpr std::string_view specials = "()<>[]:;@\\,.\"";
  return c >= 0x80 || (c > 0x20 && c < 0x7f && specials.find(static_cast<char>(c)) == std::string_view::npos);
}

// RFC 5321 §4.1.2 Local-part = Dot-string / Quoted-string.
bool isLocalPart(std::string_view text) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
    std::string_view inside = text.substr(1, text.size() - 2);
    for (std::size_t i = 0; i < inside.size(); ++i) {
      auto c = static_cast<unsigned char>(inside[i]);
      if (c == '\\') {  // quoted-pairSMTP = %d92 %d32-126
        if (++i >= inside.size() || inside[i] < 32 || inside[i] > 126) return false;
      } else if (c == '"' || (c < 32) || c == 127) {  // qtextSMTP: %d32-33 / %d35-91 / %d93-126
        return false;
      }
    }
    return true;
  }
  if (text.empty() || text.front() == '.' || text.back() == '.' || text.find("..") != std::string_view::npos)
    return false;
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return c == '.' || isAtext(c); });
}

bool sameOrSubdomain(std::string_view name, std::string_view domain) {
  if (name.size() == domain.size()) return equalsIgnoreCase(name, domain);
  return name.size() > domain.size() && name[name.size() - domain.size() - 1] == '.' &&
         equalsIgnoreCase(name.substr(name.size() - domain.size()), domain);
}

}  // namespace

bool isDkimDomain(std::string_view text) { return isDomainName(text); }

bool isDkimSelector(std::string_view text) {
  // A selector may be one label, a domain-name is two or more: the labels are the same.
  return text.find('.') == std::string_view::npos ? isDomainName(std::string(text) + ".x") : isDomainName(text);
}

bool isDkimIdentity(std::string_view identity, std::string_view domain) {
  auto decoded = decodeDkimQuotedPrintable(identity);
  if (!decoded) return false;
  std::size_t at = decoded->rfind('@');
  if (at == std::string::npos) return false;
  std::string_view local = std::string_view(*decoded).substr(0, at);
  std::string_view name = std::string_view(*decoded).substr(at + 1);
  return (local.empty() || isLocalPart(local)) && isDomainName(name) && sameOrSubdomain(name, domain);
}

std::optional<std::string> invalidDkimIdentifiers(std::string_view domain, std::string_view selector,
                                                  std::optional<std::string_view> identity) {
  if (!isDkimDomain(domain)) return "d= is not a valid domain name";
  if (!isDkimSelector(selector)) return "s= is not a valid selector";
  if (identity && !isDkimIdentity(*identity, domain)) return "i= is not an address within d=";
  return std::nullopt;
}

}  // namespace mailgate
