#include "filters/spf/spf_macro.h"

#include <algorithm>

namespace mailgate {
namespace {

// libspf2 refuses a DIGIT transformer above 128 (SPF_c_parse_var); a value never has more parts
// (a name has at most 127 labels, an IPv6 address 32 nibbles), so 128 means "all" as well.
constexpr unsigned kLibspf2MaxKeep = 128;
// Parsing clamps larger transformers here; any value past kLibspf2MaxKeep behaves the same.
constexpr unsigned kMaxKeep = 1000;

bool isMacroLetter(char letter) {
  return std::string_view("slodiphcrtv").find(letter) != std::string_view::npos;
}

bool isDelimiter(char c) { return std::string_view(".-+,/_=").find(c) != std::string_view::npos; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

void appendLiteral(MacroString& macro, char c) {
  if (macro.empty() || macro.back().kind != MacroToken::Kind::Literal) {
    macro.push_back(MacroToken{MacroToken::Kind::Literal, {}, {}});
  }
  macro.back().literal.push_back(c);
}

std::string describeByte(unsigned char c) {
  static const char* hex = "0123456789ABCDEF";
  return std::string("0x") + hex[c >> 4] + hex[c & 15];
}

// "%{" was seen at text[start - 2]; parses up to the closing "}".
std::optional<MacroExpand> parseExpand(std::string_view text, size_t& pos, MacroUse use,
                                       std::string& error) {
  MacroExpand expand;
  if (pos >= text.size() || !isMacroLetter(lower(text[pos]))) {
    error = "unknown macro letter in \"%{\" (RFC 7208 §7.1)";
    return std::nullopt;
  }
  expand.letter = lower(text[pos]);
  expand.url_encode = text[pos] != expand.letter;
  ++pos;
  if (use == MacroUse::Record && std::string_view("crt").find(expand.letter) != std::string_view::npos) {
    error = std::string("macro %{") + expand.letter + "} is allowed only in explanation text (RFC 7208 §7.1)";
    return std::nullopt;
  }
  bool digits = false;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    digits = true;
    expand.keep = std::min(kMaxKeep, expand.keep * 10 + static_cast<unsigned>(text[pos] - '0'));
    ++pos;
  }
  if (digits && expand.keep == 0) {
    error = "macro transformer 0 (RFC 7208 §7.3: the number must be nonzero)";
    return std::nullopt;
  }
  if (pos < text.size() && lower(text[pos]) == 'r') {
    expand.reverse = true;
    ++pos;
  }
  while (pos < text.size() && isDelimiter(text[pos])) expand.delimiters.push_back(text[pos++]);
  if (pos >= text.size() || text[pos] != '}') {
    error = "malformed macro-expand (RFC 7208 §7.1: \"%{\" letter *DIGIT [\"r\"] *delimiter \"}\")";
    return std::nullopt;
  }
  ++pos;
  return expand;
}

std::vector<std::string> splitParts(const std::string& value, const std::string& delimiters) {
  const std::string_view delims = delimiters.empty() ? std::string_view(".") : std::string_view(delimiters);
  std::vector<std::string> parts(1);
  for (char c : value) {
    if (delims.find(c) != std::string_view::npos) {
      parts.emplace_back();
    } else {
      parts.back().push_back(c);
    }
  }
  return parts;
}

// RFC 7208 §7.3 and RFC 3986 §2.3: everything but ALPHA DIGIT "-" "." "_" "~" is escaped.
std::string urlEscape(const std::string& value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string valueOf(char letter, const MacroValues& values) {
  switch (letter) {
    case 's': return values.s;
    case 'l': return values.l;
    case 'o': return values.o;
    case 'd': return values.d;
    case 'i': return values.i;
    case 'p': return values.p ? values.p() : std::string("unknown");
    case 'h': return values.h;
    case 'c': return values.c;
    case 'r': return values.r;
    case 't': return std::to_string(values.t);
    case 'v': return values.v;
    default: return {};
  }
}

std::string transform(const std::string& value, const MacroExpand& expand) {
  std::vector<std::string> parts = splitParts(value, expand.delimiters);
  if (expand.reverse) std::reverse(parts.begin(), parts.end());
  if (expand.keep > 0 && expand.keep < parts.size()) {
    parts.erase(parts.begin(), parts.end() - expand.keep);
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.push_back('.');
    out += parts[i];
  }
  return expand.url_encode ? urlEscape(out) : out;
}

size_t alignedBlock(size_t literal_bytes) { return (4 + literal_bytes + 3) & ~size_t{3}; }

}  // namespace

std::optional<MacroString> parseMacroString(std::string_view text, MacroUse use, std::string& error) {
  MacroString macro;
  size_t pos = 0;
  while (pos < text.size()) {
    auto c = static_cast<unsigned char>(text[pos]);
    if (c == '%') {
      if (pos + 1 >= text.size()) {
        error = "'%' at the end of a macro-string (RFC 7208 §7.1)";
        return std::nullopt;
      }
      char next = text[pos + 1];
      pos += 2;
      if (next == '%') {
        macro.push_back(MacroToken{MacroToken::Kind::Percent, {}, {}});
      } else if (next == '_') {
        macro.push_back(MacroToken{MacroToken::Kind::Space, {}, {}});
      } else if (next == '-') {
        macro.push_back(MacroToken{MacroToken::Kind::UrlSpace, {}, {}});
      } else if (next == '{') {
        auto expand = parseExpand(text, pos, use, error);
        if (!expand) return std::nullopt;
        macro.push_back(MacroToken{MacroToken::Kind::Expand, {}, std::move(*expand)});
      } else {
        error = std::string("'%' followed by '") + (next >= 0x21 && next <= 0x7e ? std::string(1, next) : describeByte(static_cast<unsigned char>(next))) +
                "' (RFC 7208 §7.1: only \"%{\", \"%%\", \"%_\", \"%-\")";
        return std::nullopt;
      }
      continue;
    }
    bool literal = c >= 0x21 && c <= 0x7e;                      // macro-literal = %x21-24 / %x26-7E
    bool space = c == 0x20 && use == MacroUse::Explanation;      // explain-string allows SP
    if (!literal && !space) {
      error = c >= 0x80 ? "non-ASCII byte " + describeByte(c) + " (RFC 7208 §3.1: SPF records are 7-bit ASCII)"
                        : "invalid character " + describeByte(c) + " in a macro-string (RFC 7208 §7.1)";
      return std::nullopt;
    }
    appendLiteral(macro, static_cast<char>(c));
    ++pos;
  }
  return macro;
}

bool hasMacroExpand(const MacroString& macro) {
  return std::any_of(macro.begin(), macro.end(),
                     [](const MacroToken& token) { return token.kind == MacroToken::Kind::Expand; });
}

std::optional<std::string> macroForLibspf2(const MacroString& macro) {
  std::string out;
  for (const MacroToken& token : macro) {
    switch (token.kind) {
      case MacroToken::Kind::Literal: out += token.literal; break;
      case MacroToken::Kind::Percent: out += "%%"; break;
      case MacroToken::Kind::Space: out += "%_"; break;
      case MacroToken::Kind::UrlSpace: out += "%-"; break;
      case MacroToken::Kind::Expand: {
        const MacroExpand& expand = token.expand;
        if (expand.delimiters.find_first_of(",/") != std::string::npos) return std::nullopt;
        out += "%{";
        out.push_back(expand.url_encode ? static_cast<char>(expand.letter - 'a' + 'A') : expand.letter);
        if (expand.keep > 0) out += std::to_string(std::min(expand.keep, kLibspf2MaxKeep));
        if (expand.reverse) out.push_back('r');
        out += expand.delimiters;
        out.push_back('}');
        break;
      }
    }
  }
  return out;
}

size_t libspf2CompiledSize(const MacroString& macro) {
  size_t size = 0;
  size_t run = 0;  // literal bytes of the string block being built
  for (const MacroToken& token : macro) {
    switch (token.kind) {
      case MacroToken::Kind::Literal: run += token.literal.size(); break;
      case MacroToken::Kind::Percent:
      case MacroToken::Kind::Space: run += 1; break;
      case MacroToken::Kind::UrlSpace: run += 3; break;  // libspf2 stores "%20"
      case MacroToken::Kind::Expand:
        if (run > 0) size += alignedBlock(run);
        run = 0;
        size += 4;  // sizeof(SPF_data_var_t)
        break;
    }
  }
  if (run > 0) size += alignedBlock(run);
  return size;
}

std::string expandMacroString(const MacroString& macro, const MacroValues& values) {
  std::string out;
  for (const MacroToken& token : macro) {
    switch (token.kind) {
      case MacroToken::Kind::Literal: out += token.literal; break;
      case MacroToken::Kind::Percent: out.push_back('%'); break;
      case MacroToken::Kind::Space: out.push_back(' '); break;
      case MacroToken::Kind::UrlSpace: out += "%20"; break;
      case MacroToken::Kind::Expand: out += transform(valueOf(token.expand.letter, values), token.expand); break;
    }
  }
  return out;
}

}  // namespace mailgate
