#pragma once
// The addresses and display names in an address header (From, To, Reply-To...), as
// SpamAssassin's parse_header_addresses() reads them for `:addr` and `:name`: "Name <a@b>",
// "a@b (Name)", quoted names, groups, several addresses separated by commas. Lenient like a mail
// reader, because rules mostly look at malformed headers.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::rules {

struct HeaderAddress {
  std::optional<std::string> phrase;   // display name, raw (undecoded), quotes and escapes removed
  std::optional<std::string> address;  // local@domain

  static std::vector<HeaderAddress> parseList(std::string_view raw_value);
};

}  // namespace mailgate::rules
