#include "rules/header_address.h"
#include "gateway/util/ascii.h"

#include <cctype>

namespace mailgate::rules {
namespace {

bool isSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Keeps local@domain of what looks like an address (the first '@' and what follows up to another).
std::optional<std::string> validAddress(std::string_view text) {
  std::string address = trimmed(text);
  std::size_t at = address.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= address.size()) return std::nullopt;
  for (char c : address)
    if (isSpace(c) || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';') return std::nullopt;
  std::size_t second = address.find('@', at + 1);
  if (second != std::string::npos) address.resize(second);
  return address;
}

// One entry of the list (between commas), its pieces sorted out.
HeaderAddress parseEntry(std::string_view entry) {
  std::string phrase, bare, comment, angle;
  bool has_angle = false, has_phrase_text = false;
  for (std::size_t i = 0; i < entry.size(); ++i) {
    char c = entry[i];
    if (c == '"') {
      std::size_t j = i + 1;
      for (; j < entry.size() && entry[j] != '"'; ++j) {
        if (entry[j] == '\\' && j + 1 < entry.size()) ++j;
        phrase += entry[j];
      }
      has_phrase_text = true;
      i = j;
    } else if (c == '(') {
      int depth = 0;
      std::size_t j = i;
      std::string text;
      for (; j < entry.size(); ++j) {
        if (entry[j] == '\\' && j + 1 < entry.size()) {
          text += entry[++j];
          continue;
        }
        if (entry[j] == '(' && depth++ == 0) continue;
        if (entry[j] == ')' && --depth == 0) break;
        text += entry[j];
      }
      if (comment.empty()) comment = trimmed(text);
      i = j;
    } else if (c == '<' && !has_angle) {
      std::size_t close = entry.find('>', i);
      if (close == std::string_view::npos) close = entry.size();
      angle = std::string(entry.substr(i + 1, close - i - 1));
      has_angle = true;
      i = close;
    } else {
      if (!has_angle) {
        phrase += c;
        bare += c;
        if (!isSpace(c)) has_phrase_text = true;
      }
    }
  }
  HeaderAddress result;
  if (has_angle) {
    // Comments inside the angle brackets are not part of the address.
    std::string cleaned;
    int depth = 0;
    for (char c : angle) {
      if (c == '(') ++depth;
      else if (c == ')' && depth > 0) --depth;
      else if (depth == 0) cleaned += c;
    }
    result.address = validAddress(cleaned);
    std::string name = trimmed(phrase);
    if (has_phrase_text && !name.empty()) result.phrase = name;
  } else {
    // No angle brackets: the bare text is the address (or, when it is none, a name).
    result.address = validAddress(bare);
    if (!result.address) {
      std::string name = trimmed(phrase);
      if (!name.empty()) result.phrase = name;
    }
  }
  if (result.phrase && result.address && *result.phrase == *result.address) result.phrase.reset();
  if (!result.phrase && !comment.empty()) result.phrase = comment;
  return result;
}

}  // namespace

std::vector<HeaderAddress> HeaderAddress::parseList(std::string_view raw_value) {
  std::string value;
  for (std::size_t i = 0; i < raw_value.size(); ++i) {
    if (raw_value[i] == '\r') continue;
    value += raw_value[i] == '\n' ? ' ' : raw_value[i];
  }
  // A group ("Friends: a@b, c@d;") is read as its members.
  std::size_t special = value.find_first_of("\"()<>");
  std::size_t colon = value.find(':');
  if (colon != std::string::npos && (special == std::string::npos || colon < special) &&
      value.substr(0, colon).find('@') == std::string::npos) {
    std::size_t semicolon = value.find(';', colon);
    value = value.substr(colon + 1, semicolon == std::string::npos ? std::string::npos : semicolon - colon - 1);
  }
  std::vector<HeaderAddress> result;
  std::size_t start = 0;
  int depth = 0;
  bool quoted = false, angled = false;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    char c = i < value.size() ? value[i] : ',';
    if (i < value.size() && c == '\\') {
      ++i;
      continue;
    }
    if (c == '"' && depth == 0) quoted = !quoted;
    else if (!quoted && c == '(') ++depth;
    else if (!quoted && c == ')' && depth > 0) --depth;
    else if (!quoted && depth == 0 && c == '<') angled = true;
    else if (!quoted && depth == 0 && c == '>') angled = false;
    else if (c == ',' && ((!quoted && depth == 0 && !angled) || i == value.size())) {
      std::string_view entry = std::string_view(value).substr(start, i - start);
      if (entry.find_first_not_of(" \t") != std::string_view::npos) {
        HeaderAddress address = parseEntry(entry);
        if (address.address || address.phrase) result.push_back(std::move(address));
      }
      start = i + 1;
    }
  }
  return result;
}

}  // namespace mailgate::rules
