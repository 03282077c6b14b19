#include "filters/author_domains.h"

#include <strings.h>

#include <algorithm>

#include "gateway/c/gmime.h"

namespace mailgate {
namespace {

// A From: value longer than this is not parsed (RFC 5322 sets no limit; ours bounds the work).
constexpr std::size_t max_from_octets = 16 * 1024;

// The unfolded values of every From: field in the header section.
std::vector<std::string> fromFields(std::string_view section) {
  std::vector<std::string> values;
  std::string* current = nullptr;
  while (!section.empty()) {
    std::size_t end = section.find('\n');
    std::string_view line = section.substr(0, end);
    section = end == std::string_view::npos ? std::string_view() : section.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the end of the header section
    if (line.front() == ' ' || line.front() == '\t') {
      if (current != nullptr && current->size() < max_from_octets) current->append(line);
      continue;
    }
    current = nullptr;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (name.size() == 4 && strncasecmp(name.data(), "from", 4) == 0) {
      values.emplace_back(line.substr(colon + 1));
      current = &values.back();
    }
  }
  return values;
}

void addDomains(InternetAddressList* list, std::vector<std::string>& domains, int depth) {
  if (list == nullptr || depth > 2) return;
  int count = internet_address_list_length(list);
  for (int i = 0; i < count; ++i) {
    InternetAddress* address = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(address)) {
      addDomains(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(address)), domains, depth + 1);
      continue;
    }
    if (!INTERNET_ADDRESS_IS_MAILBOX(address)) continue;
    const char* spec = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address));
    if (spec == nullptr) continue;
    std::string_view text(spec);
    std::size_t at = text.rfind('@');
    if (at == std::string_view::npos || at + 1 == text.size()) continue;
    std::string domain(text.substr(at + 1));
    std::transform(domain.begin(), domain.end(), domain.begin(), [](unsigned char c) { return std::tolower(c); });
    while (!domain.empty() && domain.back() == '.') domain.pop_back();
    if (!domain.empty() && std::find(domains.begin(), domains.end(), domain) == domains.end())
      domains.push_back(std::move(domain));
  }
}

}  // namespace

AuthorDomains authorDomains(std::string_view header_section) { return authorDomains(fromFields(header_section)); }

AuthorDomains authorDomains(const std::vector<std::string>& fields) {
  AuthorDomains found;
  if (fields.empty()) {
    found.problem = AuthorDomains::Problem::NoFromField;
    return found;
  }
  if (fields.size() > 1) {
    found.problem = AuthorDomains::Problem::SeveralFromFields;
    return found;
  }
  initialiseGMime();
  GMimeRef<InternetAddressList> list(internet_address_list_parse(nullptr, fields.front().c_str()));
  addDomains(list.get(), found.domains, 0);
  if (found.domains.empty()) found.problem = AuthorDomains::Problem::NoDomain;
  return found;
}

const char* authorProblemText(AuthorDomains::Problem problem) {
  switch (problem) {
    case AuthorDomains::Problem::None: return "";
    case AuthorDomains::Problem::NoFromField: return "no From: field";
    case AuthorDomains::Problem::SeveralFromFields: return "more than one From: field";
    case AuthorDomains::Problem::NoDomain: return "no address with a domain in From:";
  }
  return "";
}

}  // namespace mailgate
