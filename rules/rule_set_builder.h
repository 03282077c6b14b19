#pragma once
// Turns the statements of rule files into CompiledRules: defines rules (a later definition of a
// name replaces the earlier, as in SpamAssassin), applies score/describe/tflags wherever they
// appear, expands ReplaceTags, compiles every regex and meta once, orders the metas by their
// dependencies, and records what lint reports: errors, skipped lines, rules that never match.

#include <memory>
#include <vector>

#include "rules/compiled_rules.h"
#include "rules/rule_file_reader.h"
#include "rules/rule_set.h"

namespace mailgate::rules {

class RuleSetBuilder {
 public:
  explicit RuleSetBuilder(LintReport& report) : report_(report) {}

  // Always returns what could be built; report_.errors says whether it may be used.
  std::unique_ptr<CompiledRules> build(const std::vector<Statement>& statements);

 private:
  LintReport& report_;
};

}  // namespace mailgate::rules
