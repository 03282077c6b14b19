#include "filters/spf/spf_record.h"

#include <arpa/inet.h>

#include <algorithm>

#include "filters/spf/spf_names.h"

namespace mailgate {
namespace {

bool isAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlnum(char c) { return isAlpha(c) || isDigit(c); }

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// qnum = DIGIT / %x31-39 DIGIT / "1" 2DIGIT / "2" %x30-34 DIGIT / "25" %x30-35: no leading zeros.
bool isIp4Network(std::string_view text) {
  int parts = 0;
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    std::string_view part = text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), isDigit)) return false;
    if (part.size() > 1 && part.front() == '0') return false;
    if (std::stoi(std::string(part)) > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

// ip6-network: RFC 4291 §2.2 text, which inet_pton(AF_INET6) implements.
bool isIp6Network(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  bool charset = std::all_of(text.begin(), text.end(), [](char c) {
    return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
  });
  in6_addr address{};
  return charset && inet_pton(AF_INET6, std::string(text).c_str(), &address) == 1;
}

// Takes a trailing `slashes` + digits ("/24", "//64") off `rest`. ip4-cidr-length allows up to
// 2 digits, ip6-cidr-length 3, never a leading zero (§12: "0" / %x31-39 0*1DIGIT).
bool takeCidr(std::string_view& rest, std::string_view slashes, unsigned max, std::optional<unsigned>& cidr,
              std::string& error) {
  size_t digits = 0;
  while (digits < rest.size() && isDigit(rest[rest.size() - 1 - digits])) ++digits;
  if (digits == 0 || rest.size() < digits + slashes.size()) return true;
  std::string_view number = rest.substr(rest.size() - digits);
  std::string_view before = rest.substr(0, rest.size() - digits);
  if (before.substr(before.size() - slashes.size()) != slashes) return true;
  if (slashes.size() == 1 && before.size() >= 2 && before[before.size() - 2] == '/') return true;  // "//n"
  if (number.size() > 1 && number.front() == '0') {
    error = "CIDR length " + quoted(number) + " has a leading zero (RFC 7208 §12)";
    return false;
  }
  unsigned value = number.size() > 3 ? 1000 : static_cast<unsigned>(std::stoul(std::string(number)));
  if (value > max) {
    error = "CIDR length /" + std::string(number) + " exceeds " + std::to_string(max) + " (RFC 7208 §5.6)";
    return false;
  }
  cidr = value;
  rest = before.substr(0, before.size() - slashes.size());
  return true;
}

bool parseNetwork(std::string_view rest, SpfMechanism& mechanism, std::string& error) {
  bool ip4 = mechanism.kind == SpfMechanismKind::Ip4;
  if (rest.empty() || rest.front() != ':') {
    error = std::string(ip4 ? "ip4" : "ip6") + " needs \":\" and a network";
    return false;
  }
  rest.remove_prefix(1);
  if (rest.find("//") != std::string_view::npos) {
    error = "dual CIDR length is not allowed on ip4/ip6 (RFC 7208 §5.6)";
    return false;
  }
  std::optional<unsigned> cidr;
  if (!takeCidr(rest, "/", ip4 ? 32 : 128, cidr, error)) return false;
  if (ip4 ? !isIp4Network(rest) : !isIp6Network(rest)) {
    error = "invalid " + std::string(ip4 ? "ip4" : "ip6") + "-network " + quoted(rest);
    return false;
  }
  mechanism.address = std::string(rest);
  (ip4 ? mechanism.ip4_cidr : mechanism.ip6_cidr) = cidr;
  return true;
}

bool parseDomainArgument(std::string_view rest, bool required, SpfMechanism& mechanism, std::string& error) {
  if (rest.empty()) {
    if (!required) return true;
    error = "missing domain-spec";
    return false;
  }
  if (rest.front() != ':') {
    error = "unexpected " + quoted(rest);
    return false;
  }
  mechanism.domain = parseDomainSpec(rest.substr(1), error);
  return mechanism.domain.has_value();
}

bool parseDirective(std::string_view term, SpfMechanism& mechanism, std::string& error) {
  size_t pos = 0;
  if (std::string_view("+-~?").find(term.front()) != std::string_view::npos) {
    mechanism.qualifier = static_cast<SpfQualifier>(term.front());
    pos = 1;
  }
  size_t end = pos;
  while (end < term.size() && isAlnum(term[end])) ++end;
  std::string_view name = term.substr(pos, end - pos);
  std::string_view rest = term.substr(end);
  static const std::pair<std::string_view, SpfMechanismKind> kinds[] = {
      {"all", SpfMechanismKind::All},     {"include", SpfMechanismKind::Include},
      {"a", SpfMechanismKind::A},         {"mx", SpfMechanismKind::Mx},
      {"ptr", SpfMechanismKind::Ptr},     {"ip4", SpfMechanismKind::Ip4},
      {"ip6", SpfMechanismKind::Ip6},     {"exists", SpfMechanismKind::Exists}};
  auto found = std::find_if(std::begin(kinds), std::end(kinds),
                            [&](const auto& entry) { return equalsIgnoreCase(entry.first, name); });
  if (found == std::end(kinds)) {
    error = "unknown mechanism " + quoted(term) + " (RFC 7208 §4.6.1)";
    return false;
  }
  mechanism.kind = found->second;
  switch (mechanism.kind) {
    case SpfMechanismKind::All:
      if (rest.empty()) return true;
      error = "\"all\" takes no argument";
      return false;
    case SpfMechanismKind::Include:
    case SpfMechanismKind::Exists: return parseDomainArgument(rest, true, mechanism, error);
    case SpfMechanismKind::Ptr: return parseDomainArgument(rest, false, mechanism, error);
    case SpfMechanismKind::Ip4:
    case SpfMechanismKind::Ip6: return parseNetwork(rest, mechanism, error);
    case SpfMechanismKind::A:
    case SpfMechanismKind::Mx:
      // dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ], taken from the end as
      // libspf2 and pyspf do; what is left is "" or ":" domain-spec.
      if (!takeCidr(rest, "//", 128, mechanism.ip6_cidr, error)) return false;
      if (!takeCidr(rest, "/", 32, mechanism.ip4_cidr, error)) return false;
      return parseDomainArgument(rest, false, mechanism, error);
  }
  return false;
}

bool parseModifier(std::string_view name, std::string_view value, SpfRecord& record, std::string& error) {
  bool redirect = equalsIgnoreCase(name, "redirect");
  bool exp = equalsIgnoreCase(name, "exp");
  if (redirect || exp) {
    std::optional<MacroString>& slot = redirect ? record.redirect : record.exp;
    if (slot) {
      error = std::string(redirect ? "redirect=" : "exp=") + " appears twice (RFC 7208 §6)";
      return false;
    }
    slot = parseDomainSpec(value, error);
    if (!slot) error = std::string(redirect ? "redirect=" : "exp=") + ": " + error;
    return slot.has_value();
  }
  // unknown-modifier = name "=" macro-string: ignored, but its syntax must be valid (§6, A).
  if (!parseMacroString(value, MacroUse::Record, error)) {
    error = "modifier " + std::string(name) + "=: " + error;
    return false;
  }
  ++record.unknown_modifiers;
  return true;
}

bool parseTerm(std::string_view term, SpfRecord& record, std::string& error) {
  // modifier: name "=" …, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
  size_t name_end = 0;
  if (isAlpha(term.front())) {
    name_end = 1;
    while (name_end < term.size() &&
           (isAlnum(term[name_end]) || term[name_end] == '-' || term[name_end] == '_' || term[name_end] == '.')) {
      ++name_end;
    }
  }
  if (name_end > 0 && name_end < term.size() && term[name_end] == '=') {
    return parseModifier(term.substr(0, name_end), term.substr(name_end + 1), record, error);
  }
  SpfMechanism mechanism;
  mechanism.text = std::string(term);
  if (!parseDirective(term, mechanism, error)) {
    if (error.find(quoted(term)) == std::string::npos) error = quoted(term) + ": " + error;
    return false;
  }
  record.has_all = record.has_all || mechanism.kind == SpfMechanismKind::All;
  record.mechanisms.push_back(std::move(mechanism));
  return true;
}

}  // namespace

bool SpfMechanism::queriesDns() const {
  return kind == SpfMechanismKind::Include || kind == SpfMechanismKind::A || kind == SpfMechanismKind::Mx ||
         kind == SpfMechanismKind::Ptr || kind == SpfMechanismKind::Exists;
}

unsigned SpfRecord::dnsTerms() const {
  auto count = std::count_if(mechanisms.begin(), mechanisms.end(),
                             [](const SpfMechanism& mechanism) { return mechanism.queriesDns(); });
  return static_cast<unsigned>(count) + (redirect && !has_all ? 1 : 0);
}

std::optional<MacroString> parseDomainSpec(std::string_view text, std::string& error) {
  if (text.empty()) {
    error = "empty domain-spec (RFC 7208 §4.6.1)";
    return std::nullopt;
  }
  auto macro = parseMacroString(text, MacroUse::Record, error);
  if (!macro) return std::nullopt;
  const MacroToken& last = macro->back();
  if (last.kind == MacroToken::Kind::Literal) {
    // domain-end = ( "." toplabel [ "." ] ) / macro-expand
    std::string_view end = last.literal;
    if (end.back() == '.') end.remove_suffix(1);
    size_t dot = end.rfind('.');
    if (dot == std::string_view::npos) {
      error = "domain-spec " + quoted(text) + " does not end in \".\" toplabel or a macro (RFC 7208 §7.1)";
      return std::nullopt;
    }
    if (!isToplabel(end.substr(dot + 1))) {
      error = "domain-spec " + quoted(text) + " has an invalid toplabel " + quoted(end.substr(dot + 1)) +
              " (RFC 7208 §7.1)";
      return std::nullopt;
    }
  }
  if (!hasMacroExpand(*macro) && !hasValidLabels(expandMacroString(*macro, {}))) {
    error = "domain-spec " + quoted(text) + " is not a valid domain name (empty label, label over 63 or name over 253 octets)";
    return std::nullopt;
  }
  return macro;
}

SpfParseResult parseSpfRecord(std::string_view text) {
  SpfParseResult result;
  for (unsigned char c : text) {
    if (c < 0x20 || c > 0x7e) {
      static const char* hex = "0123456789ABCDEF";
      std::string byte = std::string("0x") + hex[c >> 4] + hex[c & 15];
      result.error = c >= 0x80 ? "non-ASCII byte " + byte + " in the record (RFC 7208 §3.1)"
                               : "control character " + byte + " in the record (RFC 7208 §4.6.1: terms are separated by spaces only)";
      return result;
    }
  }
  if (text.size() < 6 || !equalsIgnoreCase(text.substr(0, 6), "v=spf1") || (text.size() > 6 && text[6] != ' ')) {
    result.error = "not a \"v=spf1\" record";
    return result;
  }
  SpfRecord record;
  size_t pos = 6;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t end = text.find(' ', pos);
    std::string_view term = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (!parseTerm(term, record, result.error)) return result;
    pos += term.size();
  }
  result.record = std::move(record);
  return result;
}

std::vector<std::string_view> selectSpfRecords(const std::vector<std::string>& txt) {
  std::vector<std::string_view> selected;
  for (const std::string& record : txt) {
    std::string_view view(record);
    if (view.size() >= 6 && equalsIgnoreCase(view.substr(0, 6), "v=spf1") && (view.size() == 6 || view[6] == ' ')) {
      selected.push_back(view);
    }
  }
  return selected;
}

}  // namespace mailgate
