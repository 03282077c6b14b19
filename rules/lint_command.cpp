#include "rules/lint_command.h"

#include <cstdio>

#include "rules/rule_set.h"

namespace mailgate::rules {

int runLintCommand(const std::vector<std::string>& paths) {
  LintReport report = RuleSet::lint(paths);
  for (const auto& problem : report.errors) std::printf("error: %s\n", problem.str().c_str());
  for (const auto& problem : report.skipped) std::printf("skipped: %s\n", problem.str().c_str());
  for (const auto& problem : report.never_match) std::printf("never matches: %s\n", problem.str().c_str());
  std::printf("%zu rules loaded, %zu errors, %zu lines skipped, %zu rules that never match\n", report.rules,
              report.errors.size(), report.skipped.size(), report.never_match.size());
  return report.errors.empty() ? 0 : 1;
}

}  // namespace mailgate::rules
