#include "rules/regex.h"

#include <cctype>
#include <string_view>

namespace mailgate::rules {
namespace {

bool isWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// The closing delimiter of SpamAssassin's symmetric opening ones.
char closingOf(char open) {
  switch (open) {
    case '{': return '}';
    case '(': return ')';
    case '<': return '>';
    case '[': return ']';
    default: return open;
  }
}

std::string pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  int length = pcre2_get_error_message(code, buffer, sizeof buffer);
  if (length < 0) return "PCRE2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<std::size_t>(length));
}

// Reads a \x{...} escape starting at `at` (pointing at the backslash); returns the value and sets
// `end` one past the '}', or returns -1 when it is not one.
long braceHexEscape(std::string_view pattern, std::size_t at, std::size_t& end) {
  if (at + 3 >= pattern.size() || pattern[at + 1] != 'x' || pattern[at + 2] != '{') return -1;
  std::size_t close = pattern.find('}', at + 3);
  if (close == std::string_view::npos) return -1;
  long value = 0;
  bool digits = false;
  for (std::size_t i = at + 3; i < close; ++i) {
    char c = pattern[i];
    if (c == ' ' || c == '_') continue;  // Perl allows blanks and underscores in \x{}
    if (!std::isxdigit(static_cast<unsigned char>(c))) return -1;
    digits = true;
    value = value * 16 + (std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10);
    if (value > 0x10ffff) value = 0x110000;  // clamp: only "above 0xFF" matters
  }
  if (!digits) return -1;
  end = close + 1;
  return value;
}

// How many of the pattern's first octets are PCRE2 start-of-pattern items ((*LF),
// (*LIMIT_MATCH=9), ...), which must stay first. Backtracking verbs ((*FAIL), (*COMMIT), (*SKIP:x))
// belong to the first alternative and are not counted.
std::size_t startItemsLength(std::string_view pattern) {
  std::size_t at = 0;
  while (pattern.substr(at).starts_with("(*")) {
    std::size_t close = pattern.find(')', at);
    if (close == std::string_view::npos) break;
    std::string_view item = pattern.substr(at + 2, close - at - 2);
    std::string_view name = item.substr(0, item.find('='));
    bool option = !name.empty() && name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") == std::string_view::npos &&
                  item.substr(name.size()).find_first_not_of("=0123456789") == std::string_view::npos;
    for (std::string_view verb : {"ACCEPT", "FAIL", "F", "COMMIT", "PRUNE", "SKIP", "THEN"})
      if (name == verb) option = false;
    if (!option) break;
    at = close + 1;
  }
  return at;
}

Pcre2Code compileText(const std::string& text, uint32_t options, pcre2_compile_context* context, int& error,
                      PCRE2_SIZE& offset) {
  return Pcre2Code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), options, &error, &offset, context));
}

// The pattern with a callout in front of every start position, for the scan's budget: PCRE2
// counts regex_match_limit from zero at each start position, so one match on a 4 KiB line can
// take seconds while no position reaches the limit. The callout goes before a group that holds
// the whole pattern (so before each alternative too); PCRE2 still skips the positions its
// start-of-match optimizations rule out, without calling it. The group's closing parenthesis is
// read as part of a trailing `#` comment (x) or an open \Q: then the compile fails, and the next
// closing is tried. Null when none compiles (the pattern then runs unguarded).
Pcre2Code compileGuarded(const std::string& pattern, uint32_t options, pcre2_compile_context* context) {
  const std::size_t start = startItemsLength(pattern);
  for (const char* close : {")", "\n)", "\\E)"}) {
    std::string text = pattern.substr(0, start) + "(?C)(?:" + pattern.substr(start) + close;
    int error = 0;
    PCRE2_SIZE offset = 0;
    if (Pcre2Code code = compileText(text, options, context, error, offset)) return code;
  }
  return nullptr;
}

// PCRE2 calls this at each start position of a guarded pattern; a negative answer ends the match.
int atStartPosition(pcre2_callout_block*, void* budget) {
  return static_cast<ScanBudget*>(budget)->exhausted() ? PCRE2_ERROR_CALLOUT : 0;
}

}  // namespace

namespace {

// One JIT stack per thread, kept for the thread's life: creating one maps regex_jit_stack_bytes
// and freeing it unmaps them, which per message cost more than a short message's matches (and
// each unmap interrupts the other cores to flush their TLBs). A thread runs one match at a time,
// so its scans may share it.
pcre2_jit_stack* threadJitStack() {
  thread_local Pcre2JitStack stack(pcre2_jit_stack_create(32 * 1024, regex_jit_stack_bytes, nullptr));
  return stack.get();
}

}  // namespace

RegexScratch::RegexScratch(ScanBudget* budget)
    : data_(pcre2_match_data_create(1, nullptr)),
      quick_(pcre2_match_context_create(nullptr)),
      guarded_(pcre2_match_context_create(nullptr)) {
  pcre2_set_match_limit(quick_.get(), regex_quick_match_limit);
  pcre2_set_match_limit(guarded_.get(), regex_match_limit);
  pcre2_jit_stack* stack = threadJitStack();
  for (pcre2_match_context* context : {quick_.get(), guarded_.get()}) {
    pcre2_set_depth_limit(context, regex_depth_limit);
    if (stack) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  if (budget != nullptr) pcre2_set_callout(guarded_.get(), &atStartPosition, budget);
}

std::expected<RegexText, std::string> splitRegexText(std::string_view text) {
  // SpamAssassin's Util::compile_regexp: "/" or m/qr with a symmetric or any non-word delimiter.
  char close = 0;
  std::string_view rest;
  if (text.starts_with('/')) {
    close = '/';
    rest = text.substr(1);
  } else if ((text.starts_with('m') && text.size() > 1) || (text.starts_with("qr") && text.size() > 2)) {
    std::size_t skip = text[0] == 'm' ? 1 : 2;
    char open = text[skip];
    if (isWordChar(open) || std::isspace(static_cast<unsigned char>(open))) {
      return std::unexpected(std::string("missing regexp delimiters"));
    }
    if (open == '\\') return std::unexpected(std::string("backslash delimiter not allowed"));
    close = closingOf(open);
    rest = text.substr(skip + 1);
  } else {
    return std::unexpected(std::string("missing regexp delimiters"));
  }
  // The closing delimiter is the last one, followed by modifiers only.
  std::size_t end = rest.size();
  while (end > 0 && std::isalpha(static_cast<unsigned char>(rest[end - 1]))) --end;
  if (end == 0 || rest[end - 1] != close) return std::unexpected(std::string("invalid end delimiter/mods"));
  RegexText result{std::string(rest.substr(0, end - 1)), std::string(rest.substr(end))};
  if (result.flags.find('e') != std::string::npos) return std::unexpected(std::string("invalid end delimiter/mods"));
  if (result.pattern.find("(?{") != std::string::npos || result.pattern.find("(??{") != std::string::npos) {
    return std::unexpected(std::string("eval (?{}) found"));
  }
  // An unescaped asymmetric delimiter inside means the rule ends earlier than its writer thought.
  if (close != '}' && close != ')' && close != ']' && close != '>') {
    for (std::size_t i = 0; i < result.pattern.size(); ++i) {
      if (result.pattern[i] == '\\') {
        ++i;
      } else if (result.pattern[i] == close) {
        return std::unexpected("unquoted delimiter '" + std::string(1, close) + "' found");
      }
    }
  }
  return result;
}

std::string perlToPcre2(std::string_view pattern, bool& unmatchable) {
  std::string out;
  out.reserve(pattern.size());
  bool in_class = false;
  std::size_t class_open = 0;  // where the current class's '[' is in `out`
  std::size_t class_body = 0;  // where its items start
  for (std::size_t i = 0; i < pattern.size();) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      if (pattern[i + 1] == 'Q') {  // \Q...\E is literal: copy it untouched
        std::size_t end = pattern.find("\\E", i + 2);
        end = end == std::string_view::npos ? pattern.size() : end + 2;
        out.append(pattern.substr(i, end - i));
        i = end;
        continue;
      }
      std::size_t end = 0;
      long value = braceHexEscape(pattern, i, end);
      if (value > 0xff) {
        if (!in_class) {
          out += "(?!)";
          unmatchable = true;
        } else if (end < pattern.size() && pattern[end] == '-' && end + 1 < pattern.size() && pattern[end + 1] != ']') {
          // A range starting above 0xFF: drop it with its end.
          std::size_t after = end + 1;
          std::size_t range_end = 0;
          if (braceHexEscape(pattern, after, range_end) >= 0) after = range_end;
          else after += pattern[after] == '\\' ? 2 : 1;
          end = after;
        } else if (out.size() > class_body && out.back() == '-') {
          out += "\\xff";  // a range ending above 0xFF ends at 0xFF for octets
        }
        i = end;
        continue;
      }
      out.append(pattern.substr(i, 2));
      i += 2;
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < pattern.size() && (pattern[i + 1] == ':' || pattern[i + 1] == '.' || pattern[i + 1] == '=')) {
        std::string closing{pattern[i + 1], ']'};
        std::size_t end = pattern.find(closing, i + 2);
        end = end == std::string_view::npos ? i + 1 : end + 2;
        out.append(pattern.substr(i, end - i));
        i = end;
        continue;
      }
      if (c == ']') {
        in_class = false;
        ++i;
        if (out.size() == class_body) {
          // Every item was dropped: the class matches nothing ([]) or any octet ([^]).
          bool negated = out.back() == '^';
          out.resize(class_open);
          out += negated ? "[\\x00-\\xff]" : "(?!)";
          if (!negated) unmatchable = true;
        } else {
          out += c;
        }
        continue;
      }
      out += c;
      ++i;
      continue;
    }
    out += c;
    ++i;
    if (c == '[') {
      in_class = true;
      class_open = out.size() - 1;
      if (i < pattern.size() && pattern[i] == '^') out += pattern[i++];
      class_body = out.size();
      if (i < pattern.size() && pattern[i] == ']') out += pattern[i++];  // a leading ']' is literal
    }
  }
  return out;
}

std::expected<Regex, std::string> Regex::parse(std::string_view text) {
  auto split = splitRegexText(text);
  if (!split) return std::unexpected(split.error());
  return compile(split->pattern, split->flags);
}

std::expected<Regex, std::string> Regex::compile(std::string_view pattern, std::string_view flags) {
  uint32_t options = PCRE2_NEVER_UTF | PCRE2_NEVER_UCP;
  for (char flag : flags) {
    switch (flag) {
      case 'i': options |= PCRE2_CASELESS; break;
      case 'm': options |= PCRE2_MULTILINE; break;
      case 's': options |= PCRE2_DOTALL; break;
      case 'x': options |= PCRE2_EXTENDED; break;
      case 'n': options |= PCRE2_NO_AUTO_CAPTURE; break;
      // Perl's charset modifiers: octets with ASCII classes is what every rule gets anyway.
      case 'a': case 'u': case 'l': case 'd': case 'p': break;
      default: return std::unexpected("unsupported regexp modifier '" + std::string(1, flag) + "'");
    }
  }
  Regex regex;
  const std::string compiled = perlToPcre2(pattern, regex.never_matches_);
  // (?!) or (*FAIL) with no alternative anywhere: nothing can ever match.
  if (compiled.find('|') != std::string::npos) regex.never_matches_ = false;
  else if (compiled.find("(?!)") != std::string::npos || compiled.find("(*FAIL)") != std::string::npos ||
           compiled.find("(*F)") != std::string::npos)
    regex.never_matches_ = true;

  Pcre2CompileContext context(pcre2_compile_context_create(nullptr));
  // Perl: only LF is a newline for ^ $ and .; \K is allowed inside lookarounds.
  pcre2_set_newline(context.get(), PCRE2_NEWLINE_LF);
  pcre2_set_compile_extra_options(context.get(), PCRE2_EXTRA_ALLOW_LOOKAROUND_BSK);
  int error = 0;
  PCRE2_SIZE offset = 0;
  // The pattern as written is compiled first: its errors are the writer's, and a pattern with an
  // unmatched ")" could compile once wrapped.
  regex.plain_ = compileText(compiled, options, context.get(), error, offset);
  if (!regex.plain_ && error == PCRE2_ERROR_PATTERN_TOO_LARGE) return std::unexpected(std::string(too_large));
  if (!regex.plain_) return std::unexpected(pcre2Message(error) + " at offset " + std::to_string(offset));
  regex.guarded_ = compileGuarded(compiled, options, context.get());
  // Without JIT (an architecture PCRE2 has none for) the interpreter runs the same pattern.
  pcre2_jit_compile(regex.plain_.get(), PCRE2_JIT_COMPLETE);
  if (regex.guarded_) pcre2_jit_compile(regex.guarded_.get(), PCRE2_JIT_COMPLETE);
  return regex;
}

namespace {

Regex::Found foundBy(int rc) {
  if (rc >= 0) return Regex::Found::Yes;  // 0: matched, but the one-pair ovector was too small for the groups
  return rc == PCRE2_ERROR_NOMATCH ? Regex::Found::No : Regex::Found::Cut;
}

}  // namespace

int Regex::match(std::string_view subject, std::size_t start, RegexScratch& scratch) const {
  auto run = [&](const Pcre2Code& code, pcre2_match_context* context) {
    return pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start, 0,
                       scratch.data(), context);
  };
  if (guarded_ && subject.size() <= regex_quick_subject_octets) {
    int rc = run(plain_, scratch.quick());
    if (rc != PCRE2_ERROR_MATCHLIMIT) return rc;
  }
  return run(guarded_ ? guarded_ : plain_, scratch.guarded());
}

Regex::Found Regex::find(std::string_view subject, RegexScratch& scratch) const {
  return foundBy(match(subject, 0, scratch));
}

Regex::Count Regex::count(std::string_view subject, unsigned max, RegexScratch& scratch) const {
  Count counted;
  std::size_t start = 0;
  while (counted.found < max && start <= subject.size()) {
    int rc = match(subject, start, scratch);
    if (rc < 0) {
      counted.cut = foundBy(rc) == Found::Cut;
      break;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data());
    ++counted.found;
    // An empty match would be found again at the same place: step over one octet, as /g does
    // (and never step back: \K in a lookahead can end a match before it starts).
    std::size_t next = ovector[1] > ovector[0] ? ovector[1] : ovector[1] + 1;
    start = next > start ? next : start + 1;
  }
  return counted;
}

}  // namespace mailgate::rules
