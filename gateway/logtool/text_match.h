#pragma once
// How `mailgate log` compares what people type with what records hold: free-text words and
// --subject as case-insensitive substrings, --from/--to as an address or a domain. Case folding is
// ASCII only (gateway/util/ascii.h): mail domains and the log's own words are ASCII, and folding
// UTF-8 properly would need a Unicode library for what is a search aid.

#include <array>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace mailgate::logtool {

// One needle searched in many haystacks (every line of a log): Horspool's skip table over the
// folded octets, so a 1 GiB scan compares a fraction of its octets.
class CaseInsensitiveNeedle {
 public:
  explicit CaseInsensitiveNeedle(std::string_view needle);
  bool foundIn(std::string_view haystack) const;
  const std::string& text() const { return needle_; }

 private:
  std::string needle_;  // folded
  std::array<uint8_t, 256> skip_{};
};

// --from / --to: "user@example.com" (that address, any case), "example.com" or "@example.com"
// (that domain and its subdomains), "<>" (the null sender, RFC 5321 §4.5.5).
class AddressPattern {
 public:
  enum class Kind { Address, Domain, Null };

  static std::expected<AddressPattern, std::string> parse(std::string_view text);
  bool matches(std::string_view address) const;
  // For an index to narrow by (the decision history): the folded address or domain.
  Kind kind() const { return kind_; }
  const std::string& text() const { return text_; }

 private:
  Kind kind_ = Kind::Address;
  std::string text_;  // folded address or domain
};

}  // namespace mailgate::logtool
