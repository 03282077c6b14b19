#include "rules/header_query.h"

#include <cctype>
#include <vector>

#include "rules/charset.h"
#include "rules/header_address.h"
#include "gateway/util/ascii.h"

namespace mailgate::rules {
namespace {

// SpamAssassin pseudo-headers computed from its Received-header parser and trust path, which
// mailgate does not have.
bool isRelayPseudoHeader(std::string_view name) {
  std::string lower = asciiLower(name);
  return lower.starts_with("x-spam-relays-") || name == "ALL-TRUSTED" || name == "ALL-UNTRUSTED" ||
         name == "ALL-INTERNAL" || name == "ALL-EXTERNAL";
}

// A display name as :name gives it without :raw: decoded, blanks squeezed, single quotes gone.
std::string decodedName(std::string_view phrase) {
  std::string decoded = decodeHeaderValue("x-name", phrase);
  if (decoded.find_first_not_of(" \t\n") == std::string::npos) return decoded;
  std::string squeezed;
  for (char c : decoded) {
    bool blank = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (blank && (squeezed.empty() || squeezed.back() == ' ')) continue;
    squeezed += blank ? ' ' : c;
  }
  while (!squeezed.empty() && squeezed.back() == ' ') squeezed.pop_back();
  if (squeezed.size() >= 2 && squeezed.front() == '\'' && squeezed.back() == '\'') squeezed = squeezed.substr(1, squeezed.size() - 2);
  return squeezed;
}

}  // namespace

std::expected<HeaderQuery, std::string> HeaderQuery::parse(std::string_view spec, bool& unsupported) {
  unsupported = false;
  HeaderQuery query;
  std::size_t colon = spec.find(':');
  query.name_ = std::string(spec.substr(0, colon));
  if (query.name_.empty()) return std::unexpected(std::string("missing header name"));
  while (colon != std::string_view::npos) {
    std::size_t next = spec.find(':', colon + 1);
    std::string_view modifier = spec.substr(colon + 1, next == std::string_view::npos ? std::string_view::npos : next - colon - 1);
    if (modifier == "raw") query.raw_ = true;
    else if (modifier == "addr") query.addr_ = true;
    else if (modifier == "name") query.display_name_ = true;
    else if (modifier == "first") query.first_ = true;
    else if (modifier == "last") query.last_ = true;
    else if (modifier == "host" || modifier == "domain" || modifier == "ip" || modifier == "revip") {
      unsupported = true;
      return std::unexpected("header modifier :" + std::string(modifier) + " is not supported");
    } else if (!modifier.empty()) {
      return std::unexpected("invalid header modifier :" + std::string(modifier));
    }
    colon = next;
  }
  if (isRelayPseudoHeader(query.name_)) {
    unsupported = true;
    return std::unexpected("pseudo-header " + query.name_ + " is not supported (no trust path)");
  }
  return query;
}

std::optional<std::string> HeaderQuery::value(const MessageView& message) const {
  // :addr and :name parse the raw value (SpamAssassin: parse_header_addresses on raw_header).
  std::vector<std::string> values = message.header(name_, raw_ || addr_ || display_name_);
  if (values.empty()) return std::nullopt;
  if (first_) values.resize(1);
  else if (last_) values.erase(values.begin(), values.end() - 1);
  if (addr_ || display_name_) {
    std::vector<std::string> parts;
    for (const std::string& line : values) {
      for (HeaderAddress& address : HeaderAddress::parseList(line)) {
        if (addr_) {
          if (address.address) parts.push_back(std::move(*address.address));
        } else if (address.phrase) {
          parts.push_back(raw_ ? std::move(*address.phrase) : decodedName(*address.phrase));
        }
      }
    }
    values = std::move(parts);
    if (values.empty()) return std::nullopt;
  }
  // Values that already end in a newline are joined as they are (SpamAssassin bug 8121).
  std::string separator = values.front().ends_with('\n') ? "" : "\n";
  std::string joined;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) joined += separator;
    joined += values[i];
  }
  return joined;
}

}  // namespace mailgate::rules
