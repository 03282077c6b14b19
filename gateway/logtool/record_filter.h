#pragma once
// What `mailgate log` selects: every option given must match (AND); an option given several
// times matches when any of its values does (OR).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/logtool/decision.h"
#include "gateway/logtool/ip_network.h"
#include "gateway/logtool/log_record.h"
#include "gateway/logtool/text_match.h"
#include "gateway/logtool/time_bound.h"

namespace mailgate::logtool {

struct RecordFilter {
  std::optional<EpochMs> since;  // time >= since
  std::optional<EpochMs> until;  // time < until
  std::vector<std::string> actions;
  std::vector<AddressPattern> senders;     // --from
  std::vector<AddressPattern> recipients;  // --to: any of the record's recipients
  std::vector<IpNetwork> clients;
  std::vector<CaseInsensitiveNeedle> subjects;
  std::vector<std::string> message_ids;  // without < >
  std::vector<std::string> stages;       // the deciding stage (decisionOf), any case
  std::vector<std::string> rules;        // a stages[].hits[].rule, any case
  std::vector<CaseInsensitiveNeedle> words;  // free text: each anywhere in the raw line

  // The free-text words, which read only the raw line.
  bool lineMatches(std::string_view line) const;
  // Everything but the words and --stage.
  bool recordMatches(const LogRecord& record) const;
  // --stage, on decisionOf(record): asked last, since it costs the most.
  bool decisionMatches(const Decision& decision) const;
  bool needsDecision() const { return !stages.empty(); }
};

// "<id@host>" or "id@host" → "id@host".
std::string_view withoutAngleBrackets(std::string_view text);

}  // namespace mailgate::logtool
