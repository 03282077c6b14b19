#pragma once
// attachments: at the end of data, on the thread pool, the message's MIME parts (GMime, as the
// rules stage decodes them) are looked at by AttachmentInspector: file names against `block`
// globs (decoded, normalised: filters/attachments/attachment_name.h), declared and detected
// (libmagic) types against `block_types`, and the same inside archives. A blocked file is refused
// with 554 5.7.1 naming it (`action = "reject"`) or tagged (`action = "tag"`); an encrypted
// archive (`on_encrypted_archive`, default tag) and an archive past the inspector's bounds or
// unreadable (`on_unchecked_archive`, default tag) have their own action, accept | tag | reject.
// Tagged mail gets X-Attachment-Warning; incoming fields of that name are removed.

#include <memory>
#include <string>
#include <vector>

#include "filters/attachments/attachment_inspector.h"
#include "filters/policy_action.h"
#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class AttachmentsStage final : public Stage {
 public:
  // The message is parsed whole in memory; a larger one is inspected in its first part only, and
  // that counts as an unchecked archive would (on_unchecked_archive). The size_limit stage
  // usually refuses such mail first.
  static constexpr uint64_t max_message_octets = 64 * 1024 * 1024;
  // MIME parts looked at, and multipart/message nesting followed (as the rule engine's bounds).
  static constexpr std::size_t max_parts = 1000;
  static constexpr int max_mime_depth = 20;

  struct Policy {
    AttachmentRules rules;
    PolicyAction action = PolicyAction::Reject;
    PolicyAction on_encrypted_archive = PolicyAction::Tag;
    PolicyAction on_unchecked_archive = PolicyAction::Tag;
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  explicit AttachmentsStage(Policy policy) : policy_(std::make_shared<const Policy>(std::move(policy))) {}

  std::string_view name() const override { return "attachments"; }
  PhaseMask phases() const override { return phaseBit(Phase::EndOfData); }
  bool batchesJobs() const override { return true; }
  Step check(const StageInput& input) const override;

  // The whole decision for one message's content, for the stage and its tests.
  static Verdict inspect(const Policy& policy, std::string_view message, bool cut);

 private:
  std::shared_ptr<const Policy> policy_;
};

}  // namespace mailgate
