#pragma once
// SpamAssassin's ReplaceTags plugin, which mailgate has built in: `replace_tag NAME regex` and
// friends define <NAME> shorthands, and `replace_rules RULE...` expands them in those rules'
// regexes (the stock rules write obfuscated words as /<V><I><A><G><R><A>/ this way). The
// expansion copies ReplaceTags.pm step for step, <pre>/<inter>/<post> included.

#include <expected>
#include <map>
#include <set>
#include <string>
#include <string_view>

namespace mailgate::rules {

class ReplaceTags {
 public:
  // replace_start, replace_end, replace_tag, replace_pre, replace_inter, replace_post, replace_rules.
  static bool isSetting(std::string_view keyword);
  std::expected<void, std::string> set(std::string_view keyword, std::string_view value);

  const std::set<std::string>& rules() const { return rules_; }
  // `pattern` with `flags` (as written in the rule) expanded; the flags end up inline, as
  // "(?i)...", so the result compiles without separate flags. Unchanged when nothing is replaced.
  std::string expand(std::string_view pattern, std::string_view flags) const;

 private:
  std::string start_ = "<";
  std::string end_ = ">";
  std::map<std::string, std::string, std::less<>> tags_, pre_, inter_, post_;
  std::set<std::string> rules_;
};

}  // namespace mailgate::rules
