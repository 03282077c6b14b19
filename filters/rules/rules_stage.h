#pragma once
// rules: SpamAssassin-syntax rules (rules/) scored against the message at the end of data, on the
// thread pool. The summed score is compared with tag_score (X-Spam-Flag, optional Subject
// prefix), tempfail_score (451 4.7.1) and reject_score (550 5.7.1 with the configured text);
// X-Spam-Score and X-Spam-Status are added to every message scanned, and every X-Spam-* field
// arriving from outside is dropped (only this gateway may vouch for them). A scan has a CPU budget
// (scan_budget) and stops at the stage's timeout; a scan cut short decides on the hits it found,
// and the log names the rules cut short. The rule set is loaded when the configuration is, so
// SIGHUP reloads it with the rest, and a broken file keeps the old one.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"
#include "rules/rule_set.h"

namespace mailgate {

class RulesStage final : public Stage {
 public:
  // A hostile message (built for a rule that backtracks catastrophically) holds a pool thread
  // this long, then the rules not yet run are left out. bench/rules' 1 MiB message needs most of
  // it for its thousand rules on a loaded core, its 10 KiB one a few milliseconds.
  static constexpr std::chrono::milliseconds default_scan_budget{100};

  struct Policy {
    double tag_score = 5.0;
    std::optional<double> tempfail_score;
    std::optional<double> reject_score;
    std::string reject_text = "Message refused as spam";
    std::string subject_prefix;  // empty: the Subject is left alone
    // A larger message is scanned in its first max_scan_bytes (cut at a line end), as
    // SpamAssassin's own callers (spamc's 500 KB) bound what they hand it.
    uint64_t max_scan_bytes = 1024 * 1024;
    // CPU time the scan of one message may take (scan_budget); see default_scan_budget.
    std::chrono::milliseconds scan_budget = default_scan_budget;
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  RulesStage(std::shared_ptr<const rules::RuleSet> rules, Policy policy)
      : rules_(std::move(rules)), policy_(std::move(policy)) {}

  std::string_view name() const override { return "rules"; }
  PhaseMask phases() const override { return phaseBit(Phase::EndOfData); }
  bool batchesJobs() const override { return true; }
  Step check(const StageInput& input) const override;

  // The verdict for a scan (pure: unit-tested on its own). `subject` is the message's decoded-as-
  // received Subject value (nullopt: none), for the prefix.
  static Verdict decide(const rules::ScanResult& scan, const Policy& policy, const std::optional<std::string>& subject);

 private:
  std::shared_ptr<const rules::RuleSet> rules_;
  Policy policy_;
};

// "7.3" / "-0.5" / "0.0": one decimal, as SpamAssassin prints scores.
std::string formatScore(double score);

}  // namespace mailgate
