#pragma once
// A compiled set of SpamAssassin-syntax rules (header, body, rawbody, uri, full, mimeheader, meta;
// score, describe, tflags; include, if/ifplugin/else/endif, ReplaceTags), loaded once from files
// and folders and then shared, immutable, by every scan. README "Writing rules" lists what is
// supported and what is skipped.
//
// Scores come from score set 0 (the first of `score NAME a b c d`): SpamAssassin picks the set by
// whether Bayes and network tests run, and mailgate runs neither.

#include <cstddef>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "rules/message_view.h"
#include "rules/scan_budget.h"

namespace mailgate::rules {

struct Problem {
  std::string file;
  int line = 0;
  std::string text;
  std::string str() const;  // "file:line: text"
};

struct LintReport {
  std::vector<Problem> errors;       // make the set fail to load
  std::vector<Problem> skipped;      // lines and blocks not supported, ignored
  std::vector<Problem> never_match;  // rules that load but can never add to a score
  size_t rules = 0;                  // rules loaded
};

struct RuleHit {
  std::string name;
  double score = 0;  // what it added (score × hits for tflags multiple)
  std::string description;
};

// A rule whose answer is not known: a match of it stopped before it knew. Why: "step_limit" (one
// match ran out of regex_match_limit steps; the scan went on), "budget" (the scan's CPU time ran
// out in it) or "stopped" (the scan was asked to stop, e.g. by the stage's timeout).
struct CutRule {
  std::string name;
  std::string why;
};

struct ScanResult {
  double score = 0;
  std::vector<RuleHit> hits;  // sorted by name; subrules (__NAME) are never listed
  // A scan cut short still counts every hit it found (metas see the rest as not hit).
  std::vector<CutRule> cut_short;  // in the order they were cut, each rule once
  ScanBudget::Stop stopped = ScanBudget::Stop::None;
  std::size_t rules_not_run = 0;  // left out once the scan stopped (metas always run)
};

struct CompiledRules;

class RuleSet {
 public:
  // Files and folders (a folder: its *.cf files in name order, as SpamAssassin reads a rules
  // dir). Unsupported lines are recorded in report->skipped and never fatal; real errors (bad
  // regex, malformed supported line, missing include, unbalanced if/endif, meta loops) fail the
  // load with file:line.
  static std::expected<std::shared_ptr<const RuleSet>, std::vector<Problem>> load(const std::vector<std::string>& paths,
                                                                                 LintReport* report = nullptr);
  // Errors, skipped lines and never-matching rules, whether or not the set loads.
  static LintReport lint(const std::vector<std::string>& paths);

  // Thread-safe and const: any number of scans may run at once. Within `limits` (none: until
  // every rule ran); when they run out, the rules not yet run are left out.
  ScanResult scan(const MessageView& message, ScanLimits limits = {}) const;
  size_t size() const;

  explicit RuleSet(std::unique_ptr<const CompiledRules> compiled);
  ~RuleSet();
  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;

 private:
  std::unique_ptr<const CompiledRules> compiled_;
};

}  // namespace mailgate::rules
