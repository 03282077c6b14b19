#pragma once
// One rule regex, written as SpamAssassin writes it (/re/flags, m{re}flags, m!re!flags), compiled
// once with PCRE2 and its JIT. Patterns match bytes — the UTF-8 octets of decoded text — with
// ASCII-only \w \d \s and case folding, as SpamAssassin 4 compiles them (qr//aa on octets).
// Matching is const and thread-safe; each thread brings its own RegexScratch.

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

#include "rules/pcre2_c.h"

namespace mailgate::rules {

// Backtracking budget per match: a pathological pattern on a hostile message gives up (no match)
// instead of holding a pool thread for seconds. SpamAssassin bounds the same risk with its
// per-message time limit; ten million steps is PCRE2's own default, a tenth of it is still far
// above what any real rule needs on a 2 MiB message.
constexpr uint32_t regex_match_limit = 1'000'000;
// JIT stack per scanning thread: deep enough for nested quantifiers over long lines (PCRE2's own
// default of 32 KiB fails those with an error, which would read as "no match").
constexpr std::size_t regex_jit_stack_bytes = 1024 * 1024;

// What one thread needs to run matches: match data and a match context with its JIT stack.
class RegexScratch {
 public:
  RegexScratch();
  pcre2_match_data* data() const { return data_.get(); }
  pcre2_match_context* context() const { return context_.get(); }

 private:
  Pcre2MatchData data_;
  Pcre2JitStack stack_;
  Pcre2MatchContext context_;
};

// "/re/i" split into pattern "re" and flags "i", as SpamAssassin's compile_regexp() strips them.
struct RegexText {
  std::string pattern;
  std::string flags;
};
std::expected<RegexText, std::string> splitRegexText(std::string_view text);

// Rewrites what Perl accepts and 8-bit PCRE2 refuses: \x{N} above 0xFF (a code point no octet
// string holds, so Perl never matches it there) becomes (?!) outside a class and is dropped inside
// one. `unmatchable` is set when such a piece stands outside a class.
std::string perlToPcre2(std::string_view pattern, bool& unmatchable);

class Regex {
 public:
  // `text` as a rule writes it, delimiters and flags included.
  static std::expected<Regex, std::string> parse(std::string_view text);
  // A pattern without delimiters, with flags from "imsxn" (and Perl's no-op charset flags).
  // A pattern PCRE2 compiles past its size limit fails with exactly `too_large`.
  static std::expected<Regex, std::string> compile(std::string_view pattern, std::string_view flags);
  static constexpr std::string_view too_large = "regular expression is too large for PCRE2";

  bool matches(std::string_view subject, RegexScratch& scratch) const;
  // Matches counted as Perl's `while (/re/g)` counts them, stopping at `max`.
  unsigned count(std::string_view subject, unsigned max, RegexScratch& scratch) const;

  // True when the pattern can be seen, cheaply, to never match anything.
  bool neverMatches() const { return never_matches_; }

 private:
  Regex() = default;

  Pcre2Code code_;
  bool never_matches_ = false;
};

}  // namespace mailgate::rules
