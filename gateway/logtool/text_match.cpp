#include "gateway/logtool/text_match.h"

#include <algorithm>
#include <cstring>

#include "gateway/util/ascii.h"

namespace mailgate::logtool {
namespace {

// The table of folded octets, so that the search loop folds with one load.
constexpr std::array<char, 256> fold_table = [] {
  std::array<char, 256> table{};
  for (int c = 0; c < 256; ++c) table[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return table;
}();

inline char fold(char c) { return fold_table[static_cast<unsigned char>(c)]; }

bool endsWithIgnoreCase(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && equalsIgnoreCase(text.substr(text.size() - suffix.size()), suffix);
}

}  // namespace

CaseInsensitiveNeedle::CaseInsensitiveNeedle(std::string_view needle) : needle_(asciiLower(needle)) {
  // A needle longer than 255 octets skips at most 255: still correct, only slower.
  std::size_t length = std::min<std::size_t>(needle_.size(), 255);
  skip_.fill(static_cast<uint8_t>(std::max<std::size_t>(length, 1)));
  if (needle_.size() < 2) return;
  for (std::size_t i = needle_.size() - std::min<std::size_t>(needle_.size(), 256); i + 1 < needle_.size(); ++i) {
    auto distance = static_cast<uint8_t>(std::min<std::size_t>(needle_.size() - 1 - i, 255));
    unsigned char lower = static_cast<unsigned char>(needle_[i]);
    skip_[lower] = distance;
    if (lower >= 'a' && lower <= 'z') skip_[lower - 'a' + 'A'] = distance;
  }
}

bool CaseInsensitiveNeedle::foundIn(std::string_view haystack) const {
  std::size_t length = needle_.size();
  if (length == 0) return true;
  if (haystack.size() < length) return false;
  const char* data = haystack.data();
  char last = needle_[length - 1];
  for (std::size_t pos = 0; pos + length <= haystack.size();) {
    char tail = data[pos + length - 1];
    if (fold(tail) == last) {
      std::size_t i = 0;
      while (i + 1 < length && fold(data[pos + i]) == needle_[i]) ++i;
      if (i + 1 == length) return true;
    }
    pos += skip_[static_cast<unsigned char>(tail)];
  }
  return false;
}

std::expected<AddressPattern, std::string> AddressPattern::parse(std::string_view text) {
  AddressPattern pattern;
  if (text == "<>") {
    pattern.kind_ = Kind::Null;
    return pattern;
  }
  if (text.size() >= 2 && text.front() == '<' && text.back() == '>') text = text.substr(1, text.size() - 2);
  std::string original(text);
  auto at = text.rfind('@');
  if (at == 0) {
    text.remove_prefix(1);
    at = std::string_view::npos;
  }
  if (text.empty() || (at != std::string_view::npos && at + 1 == text.size()))
    return std::unexpected("'" + original + "' is not an address or a domain");
  pattern.kind_ = at == std::string_view::npos ? Kind::Domain : Kind::Address;
  pattern.text_ = asciiLower(text);
  return pattern;
}

bool AddressPattern::matches(std::string_view address) const {
  switch (kind_) {
    case Kind::Null: return address.empty();
    case Kind::Address: return equalsIgnoreCase(address, text_);
    case Kind::Domain: {
      auto at = address.rfind('@');
      if (at == std::string_view::npos) return false;
      std::string_view domain = address.substr(at + 1);
      if (domain.size() == text_.size()) return equalsIgnoreCase(domain, text_);
      // A subdomain: "mail.example.com" for "example.com", never "badexample.com".
      return domain.size() > text_.size() && domain[domain.size() - text_.size() - 1] == '.' &&
             endsWithIgnoreCase(domain, text_);
    }
  }
  return false;
}

}  // namespace mailgate::logtool
