#include "filters/dnsbl/uri_domains.h"

#include <algorithm>
#include <unordered_set>

#include "filters/dmarc/dmarc_check.h"
#include "filters/header_text.h"
#include "rules/message_view.h"

namespace mailgate {

std::string uriHost(std::string_view uri) {
  std::string_view rest;
  if (auto scheme = uri.find("://"); scheme != std::string_view::npos) {
    rest = uri.substr(scheme + 3);
    rest = rest.substr(0, rest.find_first_of("/?#\\"));
    if (auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
    if (!rest.empty() && rest.front() == '[') return {};  // an IPv6 literal
    rest = rest.substr(0, rest.find(':'));
  } else if (uri.size() > 7 && std::equal(uri.begin(), uri.begin() + 7, "mailto:", [](char a, char b) {
               return (a | 0x20) == b || a == b;
             })) {
    rest = uri.substr(7);
    rest = rest.substr(0, rest.find_first_of("?,;&"));
    auto at = rest.rfind('@');
    if (at == std::string_view::npos) return {};
    rest = rest.substr(at + 1);
  } else {
    return {};
  }
  std::string host(rest);
  for (char& c : host) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (!isDomainName(host)) return {};
  // A dotted quad is an address, not a name (the lists of names do not hold it).
  if (std::all_of(host.begin(), host.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) return {};
  return host;
}

std::vector<std::string> uriDomains(std::string_view raw_message, std::size_t limit) {
  auto view = rules::MessageView::parse(raw_message);
  std::vector<std::string> domains;
  std::unordered_set<std::string> seen;
  for (const auto& uri : view.uris()) {
    if (domains.size() >= limit) break;
    std::string host = uriHost(uri);
    if (host.empty()) continue;
    std::string domain = organizationalDomain(host);
    if (seen.insert(domain).second) domains.push_back(std::move(domain));
  }
  return domains;
}

}  // namespace mailgate
