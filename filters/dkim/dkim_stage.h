#pragma once
// dkim: verifies every DKIM signature of the message (RFC 6376) with libopendkim, hashing the
// message on the thread pool while it arrives, and answers at the end of data. Each signature
// gets its RFC 8601 result (with RFC 8301's and RFC 8463's algorithm rules) in the shared
// Authentication-Results header and the decision log; the overall outcome (pass, fail, none,
// temperror, permerror) maps to accept | tag | tempfail | reject, with RFC 7372's replies.

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "filters/dkim/dkim_verifier.h"
#include "filters/policy_action.h"
#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

enum class DkimOutcome { Pass, Fail, None, TempError, PermError };

class DkimStage final : public Stage {
 public:
  struct Policy {
    // Indexed by DkimOutcome. DKIM alone refuses nothing until told to: a failed or broken
    // signature is tagged; unsigned mail, most mail, is accepted (its dkim=none is still recorded).
    std::array<PolicyAction, 5> action{PolicyAction::Accept, PolicyAction::Tag, PolicyAction::Accept,
                                       PolicyAction::Tag, PolicyAction::Tag};
    // A signature counts as passing only when its d= is the From: domain or a parent of it
    // (otherwise the outcome is fail, refused with 5.7.22 under on_fail = "reject").
    bool require_author_domain = false;
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  DkimStage(std::shared_ptr<const DkimLibrary> library, Policy policy)
      : library_(std::move(library)), policy_(policy) {}

  std::string_view name() const override { return "dkim"; }
  PhaseMask phases() const override { return phaseBit(Phase::EndOfData); }
  bool readsMessageWhileArriving() const override { return true; }
  void messageBytes(const StageInput& input, std::string_view bytes) const override;
  Step check(const StageInput& input) const override;

  // The verdict for a verified message (pure: unit-tested on its own). `error` is set when the
  // message could not be verified at all; `author_domains` are the From: field's domains (none if
  // the field is missing, doubled or holds no address).
  static Verdict decide(const std::vector<DkimSignatureResult>& signatures, const std::string& error,
                        const std::vector<std::string>& author_domains, const Policy& policy);

 private:
  std::shared_ptr<const DkimLibrary> library_;
  Policy policy_;
};

}  // namespace mailgate
