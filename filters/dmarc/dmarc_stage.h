#pragma once
// dmarc: RFC 7489 at the end of data. The Author Domain(s) from From:, the policy record through
// the shared resolver, the spf and dkim stages' results (they must come before it), alignment by
// libopendmarc with the public suffix list. The domain's p=reject is honoured with 550 5.7.26 and
// p=quarantine by tagging, each configurable; the dmarc part of the shared Authentication-Results
// header says what was found and what was applied.

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "filters/author_domains.h"
#include "filters/dmarc/dmarc_check.h"
#include "filters/policy_action.h"
#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class DmarcStage final : public Stage {
 public:
  struct Policy {
    PolicyAction on_pass = PolicyAction::Accept;
    PolicyAction on_none = PolicyAction::Accept;              // no DMARC record
    PolicyAction on_policy_none = PolicyAction::Tag;          // fail, the domain asks for nothing (p=none)
    PolicyAction on_policy_quarantine = PolicyAction::Tag;    // fail, p=quarantine
    PolicyAction on_policy_reject = PolicyAction::Reject;     // fail, p=reject
    PolicyAction on_temperror = PolicyAction::Tag;
    PolicyAction on_permerror = PolicyAction::Tag;
    PolicyAction on_invalid_from = PolicyAction::Reject;      // §6.6.1: no From:, or several
    bool apply_pct = true;
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  DmarcStage(std::shared_ptr<const DnsLookup> dns, Policy policy) : dns_(std::move(dns)), policy_(policy) {}

  std::string_view name() const override { return "dmarc"; }
  PhaseMask phases() const override { return phaseBit(Phase::EndOfData); }
  bool batchesJobs() const override { return true; }
  Step check(const StageInput& input) const override;

  // The verdict for the evaluations of a message's author domains (pure: unit-tested).
  static Verdict decide(const AuthorDomains& authors, const std::vector<DmarcEvaluation>& evaluations,
                        const Policy& policy);

 private:
  std::shared_ptr<const DnsLookup> dns_;
  Policy policy_;
};

}  // namespace mailgate
