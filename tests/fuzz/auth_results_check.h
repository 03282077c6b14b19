#pragma once
// The check the fuzz targets make on the one Authentication-Results header the stages share.

#include <string>
#include <string_view>
#include <vector>

#include "gateway/relay/outgoing_message.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/header_grammar.h"

namespace mailgate::fuzz {

// authenticationResultsHeader() of `entries` must read back, by RFC 8601, as our authserv-id and
// exactly those resinfos, each with the method and result its entry starts with.
inline void checkAuthenticationResults(std::string_view authserv_id, const std::vector<std::string>& entries) {
  std::string field = authenticationResultsHeader(authserv_id, entries);
  std::string value = field.substr(0, field.size() - 2).substr(std::string_view("Authentication-Results: ").size());
  require(field.starts_with("Authentication-Results: ") && field.ends_with("\r\n"), "Authentication-Results malformed", field);
  require(authenticationResultsValue(authserv_id, entries) == value, "header and value differ", field);
  std::string id, why;
  auto results = header::authenticationResults(value, id, why);
  require(results.has_value(), "Authentication-Results does not parse: " + why, field);
  require(id == authserv_id, "Authentication-Results authserv-id is not ours", field);
  require(results->size() == entries.size(), "Authentication-Results holds other resinfos than written", field);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::string expected = (*results)[i].method + "=" + (*results)[i].result;
    require(entries[i].starts_with(expected), "a resinfo reads back as another method or result", field);
  }
}

}  // namespace mailgate::fuzz
