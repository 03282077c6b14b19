#include "filters/spf/spf_names.h"

#include <arpa/inet.h>

#include <algorithm>

namespace mailgate {
namespace {

bool isAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlnum(char c) { return isAlpha(c) || isDigit(c); }

std::string_view withoutTrailingDot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

const char kHex[] = "0123456789abcdef";

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (isAlpha(x) ? (x | 0x20) : x) == (isAlpha(y) ? (y | 0x20) : y);
         });
}

std::string toLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool isToplabel(std::string_view label) {
  if (label.empty() || !std::all_of(label.begin(), label.end(), [](char c) { return isAlnum(c) || c == '-'; })) {
    return false;
  }
  if (label.find('-') == std::string_view::npos) return std::any_of(label.begin(), label.end(), isAlpha);
  // The second form: starts and ends with alphanum, may then be all digits ("1-2" is a toplabel).
  return isAlnum(label.front()) && isAlnum(label.back());
}

bool hasValidLabels(std::string_view name) {
  name = withoutTrailingDot(name);
  if (name.empty() || name.size() > kMaxDomainOctets) return false;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    size_t length = (dot == std::string_view::npos ? name.size() : dot) - start;
    if (length == 0 || length > kMaxLabelOctets) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::optional<std::string> identityDomain(std::string_view name) {
  name = withoutTrailingDot(name);
  if (!hasValidLabels(name) || name.find('.') == std::string_view::npos) return std::nullopt;
  bool ldh = std::all_of(name.begin(), name.end(),
                         [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
  if (!ldh) return std::nullopt;  // also refuses address literals ("[192.0.2.1]")
  std::string_view top = name.substr(name.rfind('.') + 1);
  if (std::all_of(top.begin(), top.end(), isDigit)) return std::nullopt;  // "192.0.2.1" is no domain
  return std::string(name);
}

std::optional<std::string> queryName(std::string_view expanded) {
  std::string_view name = withoutTrailingDot(expanded);
  // §7.3: "the left side is truncated to fit, by removing successive domain labels (and their
  // following dots) until the total length does not exceed 253 characters".
  while (name.size() > kMaxDomainOctets) {
    size_t dot = name.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    name.remove_prefix(dot + 1);
  }
  bool printable = std::all_of(name.begin(), name.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte <= 0x7e;
  });
  if (!printable || !hasValidLabels(name)) return std::nullopt;
  return std::string(name);
}

std::optional<ClientAddress> parseClientAddress(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string copy(text);
  ClientAddress client;
  in6_addr v6{};
  if (inet_pton(AF_INET, copy.c_str(), &client.v4) == 1) {
    client.family = AF_INET;
  } else if (inet_pton(AF_INET6, copy.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      // RFC 7208 §5: an IPv4-mapped IPv6 client is an IPv4 client (issue 3 defect (b)).
      client.family = AF_INET;
      std::copy(v6.s6_addr + 12, v6.s6_addr + 16, reinterpret_cast<unsigned char*>(&client.v4));
    } else {
      client.family = AF_INET6;
      client.v6 = v6;
    }
  } else {
    return std::nullopt;
  }
  char buffer[INET6_ADDRSTRLEN] = {};
  if (client.family == AF_INET) {
    inet_ntop(AF_INET, &client.v4, buffer, sizeof buffer);
    client.pretty = buffer;
    client.dotted = buffer;
    client.version = "in-addr";
    const auto* bytes = reinterpret_cast<const unsigned char*>(&client.v4);
    for (int i = 3; i >= 0; --i) client.reverse += std::to_string(bytes[i]) + ".";
    client.reverse += "in-addr.arpa";
  } else {
    inet_ntop(AF_INET6, &client.v6, buffer, sizeof buffer);
    client.pretty = buffer;
    client.version = "ip6";
    for (int i = 0; i < 16; ++i) {
      if (i > 0) client.dotted.push_back('.');
      client.dotted.push_back(kHex[client.v6.s6_addr[i] >> 4]);
      client.dotted.push_back('.');
      client.dotted.push_back(kHex[client.v6.s6_addr[i] & 15]);
    }
    for (int i = 15; i >= 0; --i) {
      client.reverse.push_back(kHex[client.v6.s6_addr[i] & 15]);
      client.reverse.push_back('.');
      client.reverse.push_back(kHex[client.v6.s6_addr[i] >> 4]);
      client.reverse.push_back('.');
    }
    client.reverse += "ip6.arpa";
  }
  return client;
}

}  // namespace mailgate
