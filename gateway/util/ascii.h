#pragma once
// ASCII text helpers for protocol and configuration text (header and field names, domains,
// keywords, charsets, rule files): case changes only A-Z and a-z, and blanks are the C locale's
// (space, \t \n \v \f \r), whatever the locale; other octets (UTF-8 included) are left alone.

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

namespace mailgate {

inline char asciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string asciiLower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = asciiLower(c);
  return lower;
}

inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return asciiLower(x) == asciiLower(y); });
}

inline bool isAsciiSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

inline std::string trimmed(std::string_view text) {
  std::size_t begin = 0, end = text.size();
  while (begin < end && isAsciiSpace(text[begin])) ++begin;
  while (end > begin && isAsciiSpace(text[end - 1])) --end;
  return std::string(text.substr(begin, end - begin));
}

// "name  the rest" → {"name", "the rest"}: the first word, and what follows its blanks.
inline std::pair<std::string_view, std::string_view> splitFirstWord(std::string_view text) {
  std::size_t end = 0;
  while (end < text.size() && !isAsciiSpace(text[end])) ++end;
  std::size_t rest = end;
  while (rest < text.size() && isAsciiSpace(text[rest])) ++rest;
  return {text.substr(0, end), text.substr(rest)};
}

}  // namespace mailgate
