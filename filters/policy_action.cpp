#include "filters/policy_action.h"

namespace mailgate {

std::optional<PolicyAction> parseAction(std::string_view text) {
  if (text == "accept") return PolicyAction::Accept;
  if (text == "tag") return PolicyAction::Tag;
  if (text == "tempfail") return PolicyAction::TempFail;
  if (text == "reject") return PolicyAction::Reject;
  return std::nullopt;
}

void readPolicyAction(Settings& settings, std::string_view key, PolicyAction& action) {
  auto text = settings.string(key);
  if (!text) return;
  if (auto parsed = parseAction(*text)) action = *parsed;
  else settings.fail(key, "must be one of accept, tag, tempfail, reject");
}

namespace {

// The refusal's class follows the operator's action, not the outcome: `on_fail = "tempfail"` answers
// 451 4.7.20 where a reject would answer 550 5.7.20 (the enhanced code's subject and detail stay).
Reply inClass(const Reply& refusal, bool permanent) {
  if (refusal.permanent() == permanent) return refusal;
  std::string enhanced = refusal.enhanced();
  if (!enhanced.empty()) enhanced[0] = permanent ? '5' : '4';
  std::string text;
  for (const std::string& line : refusal.lines()) text += (text.empty() ? "" : "\n") + line;
  return Reply::of(permanent ? 550 : 451, enhanced, text);
}

}  // namespace

Verdict verdictFor(PolicyAction action, const Reply& refusal, std::string reason) {
  switch (action) {
    case PolicyAction::Accept: return Verdict::proceed(std::move(reason));
    case PolicyAction::Tag: return Verdict::tag({}, 0, std::move(reason));
    case PolicyAction::TempFail: return Verdict::tempFail(inClass(refusal, false), std::move(reason));
    case PolicyAction::Reject: return Verdict::reject(inClass(refusal, true), std::move(reason));
  }
  return Verdict::proceed(std::move(reason));
}

}  // namespace mailgate
