#pragma once
// What a header rule tests: "Subject", "From:addr", "To:raw", "ALL", "ToCc:name:first"... The
// value is SpamAssassin's $hval: every value of the field joined (decoded ones end in "\n"), with
// :raw undecoded, :addr the addresses, :name the display names, :first / :last one field only.
// No value: the header is absent (the rule then tests "" or its [if-unset: ...] text).

#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "rules/message_view.h"

namespace mailgate::rules {

class HeaderQuery {
 public:
  // Errors: an unknown modifier. Unsupported (SpamAssassin has them, mailgate does not): :host,
  // :domain, :ip, :revip and the relay pseudo-headers — reported with `unsupported` set.
  static std::expected<HeaderQuery, std::string> parse(std::string_view spec, bool& unsupported);

  std::optional<std::string> value(const MessageView& message) const;

 private:
  std::string name_;
  bool raw_ = false, addr_ = false, display_name_ = false, first_ = false, last_ = false;
};

}  // namespace mailgate::rules
