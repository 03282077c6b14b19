#pragma once
// A reader of the header grammar the gateway writes and matches, after RFC 5322 §3.2 (folding,
// comments, quoted strings) and RFC 8601 §2.2 (Authentication-Results), written for the fuzz
// targets independently of filters/header_text and gateway/relay/outgoing_message: what a
// downstream MUA or filter reading the header by the RFCs would see.

#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::fuzz::header {

inline bool isWsp(char c) { return c == ' ' || c == '\t'; }
inline bool isVchar(char c) { return c >= 0x21 && c <= 0x7e; }

// RFC 2045 §5.1 token characters.
inline bool isTokenChar(char c) {
  return isVchar(c) && std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}

// RFC 5322 §2.2.3: a CRLF is only a fold, followed by WSP; unfolding removes it. nullopt when a
// CR or LF is anything else, or when a character other than VCHAR or WSP appears.
inline std::optional<std::string> unfold(std::string_view value) {
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\r') {
      if (i + 2 >= value.size() || value[i + 1] != '\n' || !isWsp(value[i + 2])) return std::nullopt;
      ++i;
      continue;
    }
    if (!isVchar(c) && !isWsp(c)) return std::nullopt;
    out += c;
  }
  return out;
}

// RFC 5322 §3.2.2: "(" *(ctext / quoted-pair / comment) ")" at text[at]; the index after it, or
// npos when it does not end.
inline std::size_t skipComment(std::string_view text, std::size_t at) {
  int depth = 0;
  for (std::size_t i = at; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (++i >= text.size()) return std::string_view::npos;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

// CFWS (on unfolded text): blanks and comments. npos when a comment does not end.
inline std::size_t skipCfws(std::string_view text, std::size_t at) {
  while (at < text.size()) {
    if (isWsp(text[at])) {
      ++at;
    } else if (text[at] == '(') {
      at = skipComment(text, at);
      if (at == std::string_view::npos) return at;
    } else {
      break;
    }
  }
  return at;
}

// RFC 5322 §3.2.4 quoted-string at text[at] == '"': its content with quoted-pairs undone; `at`
// moves past the closing quote.
inline std::optional<std::string> quotedString(std::string_view text, std::size_t& at) {
  if (at >= text.size() || text[at] != '"') return std::nullopt;
  std::string content;
  for (std::size_t i = at + 1; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      at = i + 1;
      return content;
    }
    if (c == '\\') {
      if (++i >= text.size()) return std::nullopt;
      c = text[i];
    }
    content += c;
  }
  return std::nullopt;
}

// RFC 2045 value: token / quoted-string.
inline std::optional<std::string> value(std::string_view text, std::size_t& at) {
  if (at < text.size() && text[at] == '"') return quotedString(text, at);
  std::size_t start = at;
  while (at < text.size() && isTokenChar(text[at])) ++at;
  if (at == start) return std::nullopt;
  return std::string(text.substr(start, at - start));
}

// RFC 8601 Keyword (RFC 5321 Ldh-str): letters, digits, '-', not ending in '-'.
inline std::optional<std::string> keyword(std::string_view text, std::size_t& at) {
  std::size_t start = at;
  while (at < text.size() && (std::isalnum(static_cast<unsigned char>(text[at])) || text[at] == '-')) ++at;
  if (at == start || text[at - 1] == '-') return std::nullopt;
  return std::string(text.substr(start, at - start));
}

// RFC 8601 §2.2 pvalue: value, or [[local-part] "@"] domain-name; read loosely as a quoted string
// or a run of atext / token characters with '.' and '@', so long as it stays one word.
inline bool propertyValue(std::string_view text, std::size_t& at) {
  if (at < text.size() && text[at] == '"') {
    if (!quotedString(text, at)) return false;
    if (at < text.size() && text[at] == '@') ++at;
    else return true;
  }
  std::size_t start = at;
  while (at < text.size() && isVchar(text[at]) && std::string_view("()<>,;:\\\"[]").find(text[at]) == std::string_view::npos) ++at;
  return at > start;
}

struct ResInfo {
  std::string method;
  std::string result;
};

// The value of an Authentication-Results field (RFC 8601 §2.2), folded as written: its authserv-id
// and each resinfo's method and result. nullopt (with `why`) when it does not follow the grammar.
inline std::optional<std::vector<ResInfo>> authenticationResults(std::string_view folded, std::string& authserv_id,
                                                               std::string& why) {
  auto unfolded = unfold(folded);
  if (!unfolded) {
    why = "CR, LF or a control character outside a fold";
    return std::nullopt;
  }
  std::string_view text = *unfolded;
  auto fail = [&](const char* what) {
    why = what;
    return std::nullopt;
  };
  std::size_t at = skipCfws(text, 0);
  if (at == std::string_view::npos) return fail("unterminated comment before the authserv-id");
  auto id = value(text, at);
  if (!id) return fail("no authserv-id");
  authserv_id = *id;
  at = skipCfws(text, at);
  if (at == std::string_view::npos) return fail("unterminated comment");
  while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) ++at;  // authres-version
  std::vector<ResInfo> results;
  while (true) {
    at = skipCfws(text, at);
    if (at == std::string_view::npos) return fail("unterminated comment");
    if (at == text.size()) break;
    if (text[at] != ';') return fail("';' expected before a resinfo");
    at = skipCfws(text, at + 1);
    if (at == std::string_view::npos) return fail("unterminated comment");
    auto method = keyword(text, at);
    if (!method) return fail("no method");
    if (*method == "none" && results.empty()) {
      at = skipCfws(text, at);
      if (at != text.size()) return fail("text after 'none'");
      return results;
    }
    at = skipCfws(text, at);
    if (at == std::string_view::npos || at >= text.size() || text[at] != '=') return fail("'=' expected after the method");
    at = skipCfws(text, at + 1);
    if (at == std::string_view::npos) return fail("unterminated comment");
    auto result = keyword(text, at);
    if (!result) return fail("no result");
    results.push_back({*method, *result});
    // reasonspec and propspecs: "reason" = value, ptype "." property = pvalue.
    while (true) {
      std::size_t before = at;
      at = skipCfws(text, at);
      if (at == std::string_view::npos) return fail("unterminated comment");
      if (at == text.size() || text[at] == ';') break;
      if (at == before) return fail("no space before a property");
      auto ptype = keyword(text, at);
      if (!ptype) return fail("no property type");
      if (*ptype == "reason") {
        at = skipCfws(text, at);
        if (at == std::string_view::npos || at >= text.size() || text[at] != '=') return fail("'=' expected after reason");
        at = skipCfws(text, at + 1);
        if (at == std::string_view::npos || !value(text, at)) return fail("reason without a value");
        continue;
      }
      if (at >= text.size() || text[at] != '.') return fail("'.' expected after the property type");
      ++at;
      if (!keyword(text, at)) return fail("no property");
      at = skipCfws(text, at);
      if (at == std::string_view::npos || at >= text.size() || text[at] != '=') return fail("'=' expected after the property");
      at = skipCfws(text, at + 1);
      if (at == std::string_view::npos || !propertyValue(text, at)) return fail("property without a value");
    }
  }
  if (results.empty()) return fail("no resinfo");
  return results;
}

// What an Authentication-Results field's value claims as its authserv-id, when the value follows
// RFC 8601 up to the first ';' (CFWS, the id as a token or quoted-string, an optional version).
inline std::optional<std::string> claimedAuthservId(std::string_view folded) {
  std::string text;
  for (char c : folded)
    if (c != '\r' && c != '\n') text += c;
  std::size_t at = skipCfws(text, 0);
  if (at == std::string_view::npos) return std::nullopt;
  auto id = value(text, at);
  if (!id) return std::nullopt;
  at = skipCfws(text, at);
  if (at == std::string_view::npos) return std::nullopt;
  while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) ++at;
  at = skipCfws(text, at);
  if (at == std::string_view::npos || at >= text.size() || text[at] != ';') return std::nullopt;
  return id;
}

}  // namespace mailgate::fuzz::header
