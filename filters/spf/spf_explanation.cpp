#include "filters/spf/spf_explanation.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace mailgate {
namespace {

bool addressIsClient(const std::string& text, const ClientAddress& client) {
  if (client.family == AF_INET) {
    in_addr address{};
    return inet_pton(AF_INET, text.c_str(), &address) == 1 && address.s_addr == client.v4.s_addr;
  }
  in6_addr address{};
  return inet_pton(AF_INET6, text.c_str(), &address) == 1 && std::memcmp(&address, &client.v6, sizeof address) == 0;
}

bool endsWithLabel(const std::string& name, const std::string& domain) {
  return name.size() > domain.size() + 1 && name[name.size() - domain.size() - 1] == '.' &&
         equalsIgnoreCase(std::string_view(name).substr(name.size() - domain.size()), domain);
}

}  // namespace

std::string validatedClientName(SpfDnsLayer& layer, const ClientAddress& client, const std::string& domain,
                                unsigned ptr_names) {
  DnsRecordSet ptr = layer.queryOutsideTerms(client.reverse, dns_type::PTR);
  if (ptr.status != DnsStatus::Ok) return "unknown";
  std::vector<std::string> validated;
  unsigned checked = 0;
  for (const std::string& candidate : ptr.names) {
    auto name = queryName(candidate);
    if (!name || name->find(' ') != std::string::npos) continue;
    if (checked++ == ptr_names) break;  // §4.6.4: more PTR names are ignored
    DnsRecordSet addresses = layer.queryOutsideTerms(*name, client.family == AF_INET ? dns_type::A : dns_type::AAAA);
    if (addresses.status != DnsStatus::Ok) continue;  // §5.5: a DNS error skips the name
    if (std::any_of(addresses.addresses.begin(), addresses.addresses.end(),
                    [&](const std::string& address) { return addressIsClient(address, client); })) {
      validated.push_back(*name);
    }
  }
  if (validated.empty()) return "unknown";
  for (const std::string& name : validated) {
    if (equalsIgnoreCase(name, domain)) return name;
  }
  for (const std::string& name : validated) {
    if (endsWithLabel(name, domain)) return name;
  }
  return validated.front();
}

std::string spfExplanation(SpfDnsLayer& layer, const EvaluatedRecord& deciding, MacroValues values,
                           const ClientAddress& client, unsigned ptr_names) {
  if (!deciding.record.exp) return {};
  values.d = deciding.domain;
  std::string domain = deciding.domain;
  values.p = [&layer, &client, domain, ptr_names, cached = std::optional<std::string>()]() mutable {
    if (!cached) cached = validatedClientName(layer, client, domain, ptr_names);
    return *cached;
  };
  std::optional<std::string> name = queryName(expandMacroString(*deciding.record.exp, values));
  if (!name) return {};
  DnsRecordSet txt = layer.queryOutsideTerms(*name, dns_type::TXT);
  if (txt.status != DnsStatus::Ok || txt.txt.size() != 1) return {};  // §6.2: exactly one record
  std::string error;
  std::optional<MacroString> text = parseMacroString(txt.txt.front(), MacroUse::Explanation, error);
  if (!text) return {};
  std::string explanation = expandMacroString(*text, values);
  // Printable ASCII only (it goes into an SMTP reply): a value such as a UTF-8 local part
  // expanded into it drops the explanation rather than sending bytes the reply cannot carry.
  bool printable = std::all_of(explanation.begin(), explanation.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte <= 0x7e;
  });
  if (!printable) return {};
  if (explanation.size() > kMaxExplanationOctets) explanation.resize(kMaxExplanationOctets);
  return explanation;
}

}  // namespace mailgate
