#pragma once
// SPF macro strings (RFC 7208 §7): parsed strictly, written back in the one spelling libspf2
// reads the same way, and expanded by our own code where libspf2's expansion cannot be used
// (explanations, §6.2: libspf2 returns them unexpanded, issue 3 defect (g)).

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate {

// "%{" macro-letter transformers *delimiter "}" (§7.1).
struct MacroExpand {
  char letter = 'd';        // lower case: s l o d i p h c r t v
  bool url_encode = false;  // the letter was upper case: URL-escape the value (§7.3)
  unsigned keep = 0;        // DIGIT transformer: keep this many right-hand parts; 0: all
  bool reverse = false;     // "r" transformer
  std::string delimiters;   // empty: "."
};

struct MacroToken {
  enum class Kind { Literal, Percent, Space, UrlSpace, Expand };  // text, "%%", "%_", "%-", "%{…}"
  Kind kind = Kind::Literal;
  std::string literal;  // Literal only: a run of macro-literal characters (or SP in explanations)
  MacroExpand expand;   // Expand only
};

using MacroString = std::vector<MacroToken>;

// Where a macro-string appears decides what it may contain (§7.1): "c", "r" and "t" only in
// explanation text, and SP only there (explain-string = *( macro-string / SP )).
enum class MacroUse { Record, Explanation };

// Parses a macro-string; on a syntax error returns nullopt and sets `error`.
std::optional<MacroString> parseMacroString(std::string_view text, MacroUse use, std::string& error);

bool hasMacroExpand(const MacroString& macro);  // any "%{…}"

// The spelling for libspf2 (spf_compile.c): lower-case "r", digit transformers without leading
// zeros and at most 128 (libspf2 refuses more; no value has more than 128 parts), the letter's
// case kept (it selects URL escaping). Returns nullopt when libspf2 cannot express the macro:
// its delimiter set lacks "," and "/" (KNOWN_LIMITATIONS.md).
std::optional<std::string> macroForLibspf2(const MacroString& macro);

// Exactly libspf2's compiled size of a macro-string (SPF_c_parse_macro in spf_compile.c): each
// run of literal output is a 4-byte header plus its bytes, padded to 4; each "%{…}" is 4 bytes.
// Used to keep every term far from the 511-byte buffer in which CVE-2023-42118 underflows.
size_t libspf2CompiledSize(const MacroString& macro);

// The values a macro expands to (§7.2). `p` is looked up only when a "%{p}" is met.
struct MacroValues {
  std::string s, l, o, d, i, h, c, r, v;
  long long t = 0;
  std::function<std::string()> p;
};

// §7.3: split on the delimiters, reverse, keep the right-hand parts, join with ".", URL-escape
// for upper-case letters (all but RFC 3986 unreserved characters).
std::string expandMacroString(const MacroString& macro, const MacroValues& values);

}  // namespace mailgate
