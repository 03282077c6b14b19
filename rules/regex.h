#pragma once
// One rule regex, written as SpamAssassin writes it (/re/flags, m{re}flags, m!re!flags), compiled
// once with PCRE2 and its JIT. Patterns match bytes — the UTF-8 octets of decoded text — with
// ASCII-only \w \d \s and case folding, as SpamAssassin 4 compiles them (qr//aa on octets).
// Matching is const and thread-safe; each thread brings its own RegexScratch.

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

#include "gateway/c/pcre2.h"
#include "rules/scan_budget.h"

namespace mailgate::rules {

// Backtracking steps per start position of a match: a pathological pattern gives up there (the
// rule's answer is unknown, a Cut) instead of holding a pool thread. PCRE2 counts from zero again
// at each start position, so this bounds what one position costs (about a millisecond of JIT
// code), and the scan's budget, looked at from a callout at each start position, bounds the rest.
// PCRE2's own default is ten million; a quarter million is still far above what any real rule
// needs on a line of text.
constexpr uint32_t regex_match_limit = 250'000;
// Subjects up to this length (most header values, URIs and body paragraphs) are matched first
// without the callout, which costs 15 to 25 ns at each start position tried (half the scan time
// of bench/rules' 10 KiB message), and with a lower step limit, so that at most 512 positions of
// 10,000 steps (a few milliseconds) pass before the budget is looked at again. A match that
// reaches this limit runs again with the callout and regex_match_limit: the answer is the same.
constexpr std::size_t regex_quick_subject_octets = 512;
constexpr uint32_t regex_quick_match_limit = 10'000;
// Nesting of backtracking points (the interpreter's heap frames; the JIT does not use it): deep
// enough for a repeat over a whole 4 KiB body line many times over.
constexpr uint32_t regex_depth_limit = 100'000;
// JIT stack per scanning thread: deep enough for nested quantifiers over long lines (PCRE2's own
// default of 32 KiB fails those with an error, which would read as "no match").
constexpr std::size_t regex_jit_stack_bytes = 1024 * 1024;

// What one thread needs to run matches: match data, and match contexts sharing its JIT stack: a
// quick one, and a guarded one with the scan's budget (none: the step limits only).
class RegexScratch {
 public:
  explicit RegexScratch(ScanBudget* budget = nullptr);
  pcre2_match_data* data() const { return data_.get(); }
  pcre2_match_context* quick() const { return quick_.get(); }
  pcre2_match_context* guarded() const { return guarded_.get(); }

 private:
  Pcre2MatchData data_;
  Pcre2MatchContext quick_;
  Pcre2MatchContext guarded_;
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

  // Cut: the match stopped before it knew (regex_match_limit, the JIT stack, or the scan's
  // budget), so the rule's answer on this subject is unknown.
  enum class Found { No, Yes, Cut };
  Found find(std::string_view subject, RegexScratch& scratch) const;
  // Matches counted as Perl's `while (/re/g)` counts them, stopping at `max`; `cut` as above,
  // with the matches found before it.
  struct Count {
    unsigned found = 0;
    bool cut = false;
  };
  Count count(std::string_view subject, unsigned max, RegexScratch& scratch) const;

  // True when the pattern can be seen, cheaply, to never match anything.
  bool neverMatches() const { return never_matches_; }

 private:
  Regex() = default;
  // pcre2_match's answer from `start`, quickly first where that is safe.
  int match(std::string_view subject, std::size_t start, RegexScratch& scratch) const;

  Pcre2Code plain_;    // as written
  Pcre2Code guarded_;  // with the callout (null in the unlikely case it does not compile)
  bool never_matches_ = false;
};

}  // namespace mailgate::rules
