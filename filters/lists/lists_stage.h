#pragma once
// lists: allow and block entries by client address or network, HELO name, sender address or
// domain, and recipient (filters/lists/access_list.h), from files reloaded with the
// configuration. A block match refuses with `block_reply` at the earliest phase the entry can be
// known (the client at the greeting, the HELO name at HELO, ...), or at RCPT with
// `decide = "rcpt"`, so that the refusal is logged with the sender and recipients. An allow match
// makes every later refusal of the session (client, HELO) or the transaction (sender, recipient)
// a logged non-event, for every stage or the ones `allow_skips` names; allow wins over block.

#include <memory>
#include <string>
#include <vector>

#include "filters/lists/access_list.h"
#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class ListsStage final : public Stage {
 public:
  struct Policy {
    Reply block_reply = Reply::of(550, "5.7.1", "Access denied");
    bool decide_at_rcpt = false;
    std::vector<std::string> allow_skips;  // empty: every stage
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  ListsStage(AccessList block, AccessList allow, Policy policy);

  std::string_view name() const override { return "lists"; }
  PhaseMask phases() const override { return phases_; }
  Step check(const StageInput& input) const override;

 private:
  // The entry of `list` that matches at this phase, if any.
  std::optional<std::string> match(const AccessList& list, const StageInput& input) const;

  AccessList block_;
  AccessList allow_;
  Policy policy_;
  PhaseMask phases_ = 0;
};

}  // namespace mailgate
