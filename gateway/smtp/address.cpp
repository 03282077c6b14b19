#include "gateway/smtp/address.h"
#include "gateway/util/ascii.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <vector>

namespace mailgate {
namespace {

// RFC 1035 §2.3.4 (RFC 5321 §4.5.3.1.2 defers to it).
constexpr std::size_t max_label_octets = 63;
// "IPv6:" and the longest IPv6 text form (45 octets); anything longer is no address literal, and
// the bound keeps the copy that inet_pton needs small.
constexpr std::size_t max_literal_octets = 64;
// RFC 1870 §3: "SIZE=" 1*20DIGIT.
constexpr std::size_t max_size_digits = 20;

bool isAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLetDig(char c) { return isAlpha(c) || isDigit(c); }

// RFC 5322 §3.2.3 atext.
bool isAtext(char c) {
  return isLetDig(c) || std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool startsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && equalsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

std::string asciiUpper(std::string_view text) {
  std::string upper(text);
  for (char& c : upper)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return upper;
}

// RFC 5321 §4.1.2 Dot-string: atoms joined by single dots.
bool isDotString(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '.' ? text[i - 1] == '.' : !isAtext(text[i])) return false;
  }
  return true;
}

// RFC 5321 §4.1.2 Quoted-string at the start of `text`: its length with both quotes, or 0.
// qtextSMTP and quoted-pairSMTP are printable ASCII and space only.
std::size_t quotedStringLength(std::string_view text) {
  if (text.empty() || text[0] != '"') return 0;
  for (std::size_t i = 1; i < text.size(); ++i) {
    char c = text[i];
    if (c < 0x20 || c > 0x7e) return 0;
    if (c == '"') return i + 1;
    if (c == '\\' && (++i == text.size() || text[i] < 0x20 || text[i] > 0x7e)) return 0;
  }
  return 0;
}

std::optional<Mailbox> parseMailbox(std::string_view text) {
  std::size_t at;
  if (text.starts_with('"')) {
    at = quotedStringLength(text);
    if (at == 0 || at >= text.size() || text[at] != '@') return std::nullopt;
  } else {
    // A dot-string holds no '@', so the first one ends the local part.
    at = text.find('@');
    if (at == std::string_view::npos || !isDotString(text.substr(0, at))) return std::nullopt;
  }
  std::string_view local_part = text.substr(0, at);
  std::string_view domain = text.substr(at + 1);
  if (local_part.size() > max_local_part_octets) return std::nullopt;
  if (domain.starts_with('[') ? !isValidAddressLiteral(domain) : !isValidDomain(domain)) return std::nullopt;
  return Mailbox{std::string(local_part), std::string(domain)};
}

// RFC 5321 §4.1.2 A-d-l: "@one.example,@two.example"; RFC 5321 C. says to accept and ignore it.
bool isValidSourceRoute(std::string_view route) {
  while (true) {
    std::size_t comma = route.find(',');
    std::string_view hop = route.substr(0, comma);
    if (!hop.starts_with('@') || !isValidDomain(hop.substr(1))) return false;
    if (comma == std::string_view::npos) return true;
    route.remove_prefix(comma + 1);
  }
}

enum class PathStatus { Ok, Syntax, BadAddress };

struct ParsedPath {
  PathStatus status = PathStatus::Syntax;
  Path path;
  std::string_view parameters;  // what follows the path, after its separating spaces
};

ParsedPath parsePath(std::string_view text, bool postmaster_allowed) {
  ParsedPath parsed;
  if (!text.starts_with('<')) return parsed;
  // The closing bracket is found outside quotes: a quoted local part may hold '>'.
  std::size_t close = std::string_view::npos;
  bool quoted = false;
  for (std::size_t i = 1; i < text.size() && close == std::string_view::npos; ++i) {
    if (quoted && text[i] == '\\') ++i;
    else if (text[i] == '"') quoted = !quoted;
    else if (!quoted && text[i] == '>') close = i;
  }
  if (close == std::string_view::npos) {
    // A '>' that only an open quote hid means a broken address, not a missing bracket.
    if (text.find('>') != std::string_view::npos) parsed.status = PathStatus::BadAddress;
    return parsed;
  }
  std::string_view rest = text.substr(close + 1);
  if (!rest.empty() && rest[0] != ' ') return parsed;
  parsed.parameters = rest.substr(std::min(rest.find_first_not_of(' '), rest.size()));

  parsed.status = PathStatus::BadAddress;
  std::string_view inner = text.substr(1, close - 1);
  if (close + 1 > max_path_octets) return parsed;  // RFC 5321 §4.5.3.1.3
  for (char c : inner)
    if (static_cast<unsigned char>(c) > 0x7f) return parsed;  // no SMTPUTF8 (RFC 6531) yet
  if (inner.empty()) {
    parsed.path.null = true;
    parsed.status = PathStatus::Ok;
    return parsed;
  }
  if (inner.starts_with('@')) {
    // Route domains are plain Domains (RFC 5321 §4.1.2 At-domain), so the first ':' ends the route.
    std::size_t colon = inner.find(':');
    if (colon == std::string_view::npos || !isValidSourceRoute(inner.substr(0, colon))) return parsed;
    inner.remove_prefix(colon + 1);
  } else if (postmaster_allowed && equalsIgnoreCase(inner, "postmaster")) {
    // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain must be accepted.
    parsed.path.mailbox.local_part = std::string(inner);
    parsed.status = PathStatus::Ok;
    return parsed;
  }
  auto mailbox = parseMailbox(inner);
  if (!mailbox) return parsed;
  parsed.path.mailbox = std::move(*mailbox);
  parsed.status = PathStatus::Ok;
  return parsed;
}

struct Parameter {
  std::string keyword;  // upper case: RFC 5321 §4.1.1.11, keywords are case-insensitive
  std::optional<std::string_view> value;
};

// RFC 5321 §4.1.2 Mail-parameters: esmtp-keyword ["=" esmtp-value], separated by spaces (more
// than one tolerated). Values are checked by whoever knows the keyword.
std::expected<std::vector<Parameter>, Reply> splitParameters(std::string_view text, const Reply& syntax) {
  std::vector<Parameter> parameters;
  while (!text.empty()) {
    std::size_t end = std::min(text.find(' '), text.size());
    std::string_view token = text.substr(0, end);
    text.remove_prefix(end);
    text.remove_prefix(std::min(text.find_first_not_of(' '), text.size()));
    std::size_t equals = token.find('=');
    std::string_view keyword = token.substr(0, equals);
    if (keyword.empty() || !isLetDig(keyword[0])) return std::unexpected(syntax);
    for (char c : keyword)
      if (!isLetDig(c) && c != '-') return std::unexpected(syntax);
    Parameter parameter{asciiUpper(keyword), std::nullopt};
    if (equals != std::string_view::npos) parameter.value = token.substr(equals + 1);
    parameters.push_back(std::move(parameter));
  }
  return parameters;
}

Reply unsupportedParameter(const std::string& keyword) {
  // The keyword is letters, digits and hyphens, but a long one would overflow the reply line.
  auto reply = Reply::make(555, "5.5.4", "Unsupported parameter " + keyword);
  return reply ? std::move(*reply) : Reply::of(555, "5.5.4", "Unsupported parameter");
}

std::optional<uint64_t> parseSize(std::optional<std::string_view> value) {
  if (!value || value->empty() || value->size() > max_size_digits) return std::nullopt;
  uint64_t size = 0;
  auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), size);
  if (error != std::errc() || end != value->data() + value->size()) return std::nullopt;
  return size;
}

}  // namespace

std::string Mailbox::address() const { return domain.empty() ? local_part : local_part + "@" + domain; }

std::string Path::address() const { return null ? std::string() : mailbox.address(); }

std::string Path::bracketed() const { return "<" + address() + ">"; }

std::expected<MailCommand, Reply> parseMailCommand(std::string_view argument) {
  const Reply syntax = Reply::of(501, "5.5.4", "Syntax: MAIL FROM:<address>");
  if (!startsWithIgnoreCase(argument, "FROM:")) return std::unexpected(syntax);
  argument.remove_prefix(5);
  if (argument.starts_with(' ')) argument.remove_prefix(1);  // "FROM: <a@b>", sent by some clients
  ParsedPath parsed = parsePath(argument, false);
  if (parsed.status == PathStatus::Syntax) return std::unexpected(syntax);
  if (parsed.status == PathStatus::BadAddress)
    return std::unexpected(Reply::of(501, "5.1.7", "Bad sender address syntax"));

  MailCommand command{std::move(parsed.path), std::nullopt, BodyType::Unspecified};
  auto parameters = splitParameters(parsed.parameters, syntax);
  if (!parameters) return std::unexpected(parameters.error());
  bool seen_body = false;
  for (const auto& parameter : *parameters) {
    if (parameter.keyword == "SIZE") {  // RFC 1870 §6
      if (command.size) return std::unexpected(Reply::of(501, "5.5.4", "Duplicate SIZE parameter"));
      command.size = parseSize(parameter.value);
      if (!command.size) return std::unexpected(Reply::of(501, "5.5.4", "Bad SIZE parameter"));
    } else if (parameter.keyword == "BODY") {  // RFC 6152 §2
      if (seen_body) return std::unexpected(Reply::of(501, "5.5.4", "Duplicate BODY parameter"));
      seen_body = true;
      std::string value = parameter.value ? asciiUpper(*parameter.value) : std::string();
      if (value == "7BIT") command.body = BodyType::SevenBit;
      else if (value == "8BITMIME") command.body = BodyType::EightBitMime;
      else return std::unexpected(Reply::of(501, "5.5.4", "Bad BODY parameter"));
    } else {
      return std::unexpected(unsupportedParameter(parameter.keyword));  // RFC 5321 §4.1.1.11
    }
  }
  return command;
}

std::expected<RcptCommand, Reply> parseRcptCommand(std::string_view argument) {
  const Reply syntax = Reply::of(501, "5.5.4", "Syntax: RCPT TO:<address>");
  if (!startsWithIgnoreCase(argument, "TO:")) return std::unexpected(syntax);
  argument.remove_prefix(3);
  if (argument.starts_with(' ')) argument.remove_prefix(1);
  ParsedPath parsed = parsePath(argument, true);
  if (parsed.status == PathStatus::Syntax) return std::unexpected(syntax);
  // RFC 5321 §4.1.1.3: the null path is a reverse-path only.
  if (parsed.status == PathStatus::BadAddress || parsed.path.null)
    return std::unexpected(Reply::of(501, "5.1.3", "Bad recipient address syntax"));
  auto parameters = splitParameters(parsed.parameters, syntax);
  if (!parameters) return std::unexpected(parameters.error());
  // No RCPT parameter is offered yet (DSN's NOTIFY/ORCPT would be the first).
  if (!parameters->empty()) return std::unexpected(unsupportedParameter(parameters->front().keyword));
  return RcptCommand{std::move(parsed.path)};
}

namespace {

std::expected<Path, Reply> parseAddressAlone(std::string_view address, bool recipient) {
  std::string path = address.starts_with('<') ? std::string(address) : "<" + std::string(address) + ">";
  ParsedPath parsed = parsePath(path, recipient);
  // Nothing may follow the path: parameters belong to the command, not to an address.
  if (parsed.status == PathStatus::Ok && parsed.parameters.empty() && !(recipient && parsed.path.null))
    return std::move(parsed.path);
  return std::unexpected(recipient ? Reply::of(501, "5.1.3", "Bad recipient address syntax")
                                   : Reply::of(501, "5.1.7", "Bad sender address syntax"));
}

}  // namespace

std::expected<Path, Reply> parseSenderAddress(std::string_view address) { return parseAddressAlone(address, false); }

std::expected<Path, Reply> parseRecipientAddress(std::string_view address) { return parseAddressAlone(address, true); }

bool isValidDomain(std::string_view domain) {
  if (domain.empty() || domain.size() > max_domain_octets) return false;
  // RFC 5321 §4.1.2 sub-domain = Let-dig [Ldh-str]: no empty label, no hyphen at either end.
  while (true) {
    std::size_t dot = domain.find('.');
    std::string_view label = domain.substr(0, dot);
    if (label.empty() || label.size() > max_label_octets || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!isLetDig(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    domain.remove_prefix(dot + 1);
  }
}

bool isValidAddressLiteral(std::string_view literal) {
  if (literal.size() < 2 || literal.front() != '[' || literal.back() != ']') return false;
  std::string_view inner = literal.substr(1, literal.size() - 2);
  if (inner.size() > max_literal_octets) return false;
  // RFC 5321 §4.1.3: IPv4 bare, IPv6 after the "IPv6:" tag; other tags are not standardised.
  int family = AF_INET;
  if (startsWithIgnoreCase(inner, "IPv6:")) {
    family = AF_INET6;
    inner.remove_prefix(5);
  }
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(family, std::string(inner).c_str(), address) == 1;
}


}  // namespace mailgate
