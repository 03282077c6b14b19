#pragma once
// Reads SpamAssassin rule files into statements, the way Conf/Parser.pm reads them: comments
// (an unescaped '#') and blank lines dropped, `lang xx` lines for other languages dropped,
// `include` followed relative to the including file, and if/ifplugin/else/endif blocks kept or
// skipped by evaluating their condition. What a statement means is the builder's business.
//
// Conditions: plugin(X) is true for the plugins mailgate has built in (ReplaceTags, MIMEHeader);
// can()/has() are true for Mail::SpamAssassin::Conf::feature_* (but feature_capture_rules, which
// mailgate lacks) and Conf::perl_min_version_* (PCRE2 has those regex features), false for
// everything else; `version` is 4.000000 and `perl_version` 5.036000. A condition that cannot be
// evaluated is false, and the skipped block is reported.

#include <string>
#include <vector>

#include "rules/rule_set.h"

namespace mailgate::rules {

struct Statement {
  std::string keyword;  // lower case, '-' as '_'
  std::string value;    // the rest of the line, trimmed
  std::string file;
  int line = 0;
};

class RuleFileReader {
 public:
  // Nested includes deeper than this are refused (an include loop would never end).
  static constexpr int max_include_depth = 20;

  explicit RuleFileReader(LintReport& report) : report_(report) {}

  // Each path: a file, or a folder whose *.cf files are read in name order.
  std::vector<Statement> read(const std::vector<std::string>& paths);

  static bool hasPlugin(std::string_view name);

 private:
  void readFile(const std::string& path, int depth, std::vector<Statement>& out);
  void error(const std::string& file, int line, std::string text);
  void skipped(const std::string& file, int line, std::string text);

  LintReport& report_;
};

}  // namespace mailgate::rules
