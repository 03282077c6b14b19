#include "gateway/logtool/decision.h"

namespace mailgate::logtool {
namespace {

bool decidesByVerdict(std::string_view action) { return action == "reject" || action == "tempfail" || action == "tag"; }

// A shadow stage only said what it would have done; an allowed one was overruled by an allow-list.
bool enforced(const StageEntry& stage) { return !stage.shadow && !stage.allowed; }

}  // namespace

Decision decisionOf(const LogRecord& record) {
  if (record.type == "log_overflow")
    return {"log", std::to_string(record.dropped) + " records dropped (" + std::to_string(record.dropped_total) +
                       " since start)"};
  if (record.type == "command")
    return {"smtp", record.command.empty() ? std::string(record.reason) : "command " + std::string(record.command)};
  std::string_view action = record.action;
  if (decidesByVerdict(action)) {
    // A stage that refused one recipient at RCPT is not what refused the message: its reply must
    // be the one the client heard for the whole transaction.
    for (const auto& stage : record.stages)
      if (enforced(stage) && stage.verdict == action && (stage.reply.empty() || stage.reply == record.reply))
        return {stage.name, std::string(stage.reason)};
  }
  if (!record.downstream_reply.empty() && record.reply == record.downstream_reply)
    return {"downstream", std::string(record.reason)};
  if (decidesByVerdict(action)) {
    for (const auto& stage : record.stages)
      if (enforced(stage) && stage.verdict == action) return {stage.name, std::string(stage.reason)};
  }
  if (record.reason.starts_with("downstream")) return {"downstream", std::string(record.reason)};
  // A session that ended without a transaction (a health check's QUIT, a client that left after
  // EHLO): say so, since its row has no sender or recipients to show it.
  if (record.type == "session") return {"smtp", "no transaction: " + std::string(record.reason.empty() ? "-" : record.reason)};
  return {"smtp", std::string(record.reason)};
}

}  // namespace mailgate::logtool
