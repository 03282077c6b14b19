#pragma once
// spf: checks the sender's SPF record (RFC 7208) with libspf2 behind our hardening layer
// (spf_check.h). The check starts on the thread pool as soon as MAIL FROM is accepted and is
// awaited at the first RCPT, so a refusal lands at RCPT time; the null sender is checked by its
// HELO identity (RFC 7208 §2.3). Each result maps to accept | tag | tempfail | reject, with the
// RFC 7372 reply codes, and leaves Received-SPF (RFC 7208 §9.1) and the spf part of the shared
// Authentication-Results header (RFC 8601).

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "filters/policy_action.h"
#include "filters/spf/spf_check.h"
#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class SpfStage final : public Stage {
 public:
  struct Policy {
    // Indexed by SpfResult. A cautious default: only a hard fail is refused outright.
    std::array<PolicyAction, 7> action{PolicyAction::Accept,   // none
                                       PolicyAction::Accept,   // neutral
                                       PolicyAction::Accept,   // pass
                                       PolicyAction::Reject,   // fail
                                       PolicyAction::Tag,      // softfail
                                       PolicyAction::TempFail, // temperror
                                       PolicyAction::Tag};     // permerror
    std::vector<std::string> trusted_networks;
    Duration check_timeout = std::chrono::seconds(20);
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  SpfStage(std::shared_ptr<const DnsLookup> dns, Policy policy) : dns_(std::move(dns)), policy_(std::move(policy)) {}

  std::string_view name() const override { return "spf"; }
  PhaseMask phases() const override { return phaseBit(Phase::MailFrom) | phaseBit(Phase::Rcpt); }
  Step check(const StageInput& input) const override;

  // The verdict for one outcome under `policy` (pure: unit-tested on its own).
  static Verdict decide(const SpfOutcome& outcome, const SpfRequest& request, const Policy& policy);

 private:
  std::shared_ptr<const DnsLookup> dns_;
  Policy policy_;
};

}  // namespace mailgate
