#pragma once
// What an authentication stage does with each outcome (the on_* keys of spf, dkim and dmarc):
// accept | tag | tempfail | reject.

#include <optional>
#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/pipeline/verdict.h"

namespace mailgate {

enum class PolicyAction { Accept, Tag, TempFail, Reject };

std::optional<PolicyAction> parseAction(std::string_view text);

// Reads `key` into `action` when present; reports a bad value on `settings`.
void readPolicyAction(Settings& settings, std::string_view key, PolicyAction& action);

// The verdict for `action`: `refusal` is the reply a TempFail or Reject sends, moved to the
// action's class (4xx for TempFail, 5xx for Reject) when it is of the other.
Verdict verdictFor(PolicyAction action, const Reply& refusal, std::string reason);

}  // namespace mailgate
