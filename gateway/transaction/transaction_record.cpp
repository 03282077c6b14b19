#include "gateway/transaction/transaction_record.h"

#include <cmath>
#include <type_traits>
#include <variant>

#include "gateway/log/decision_log.h"

namespace mailgate {
namespace {

// Both legs' TLS: the client's (version, cipher and SNI, null in the clear) and whether the
// message went on to the downstream encrypted.
nlohmann::json tlsRecord(const SessionFacts& session, bool downstream) {
  nlohmann::json tls = {{"version", nullptr}, {"cipher", nullptr}, {"sni", nullptr}, {"downstream", downstream}};
  if (session.tls) {
    tls["version"] = session.tls->version;
    tls["cipher"] = session.tls->cipher;
    if (!session.tls->sni.empty()) tls["sni"] = session.tls->sni;
  }
  return tls;
}

nlohmann::json base(const SessionFacts& session, std::string_view type) {
  return {{"time", DecisionLog::timestamp()},
          {"type", type},
          {"session", session.session},
          {"client", {{"ip", session.client_ip}, {"port", session.client_port}}},
          {"helo", session.helo},
          {"tls", tlsRecord(session, false)}};
}

double milliseconds(std::chrono::microseconds duration) { return static_cast<double>(duration.count()) / 1000.0; }

// Scores as they mean something: SpamAssassin gives rule scores to 0.001, so a sum is exact to
// that, and the rest is float noise (0.30000000000000004).
double roundedScore(double score) {
  double rounded = std::round(score * 1000) / 1000;
  return rounded == 0 ? 0.0 : rounded;
}

nlohmann::json detailJson(const DetailValue& detail) {
  return std::visit(
      [](const auto& value) -> nlohmann::json {
        if constexpr (std::is_same_v<std::decay_t<decltype(value)>, double>) return roundedScore(value);
        else return value;
      },
      detail.value());
}

}  // namespace

bool Transaction::absorb(PhaseResult result) {
  for (auto& outcome : result.outcomes) outcomes.push_back(std::move(outcome));
  if (!delayed && result.delayed) delayed = std::move(result.delayed);
  if (result.kind == Verdict::Kind::TempFail || result.kind == Verdict::Kind::Reject) return true;
  for (auto& header : result.headers) headers.push_back(std::move(header));
  for (auto& entry : result.auth_results) auth_results.push_back(std::move(entry));
  score += result.score;
  tagged |= result.kind == Verdict::Kind::Tag;
  return false;
}

std::string actionOf(const Reply& reply, bool tagged) {
  if (reply.positive()) return tagged ? "tag" : "accept";
  return reply.transient() ? "tempfail" : "reject";
}

nlohmann::json stageRecord(const StageOutcome& outcome) {
  nlohmann::json stage = {{"stage", outcome.stage},
                          {"phase", phaseName(outcome.phase)},
                          {"verdict", kindName(outcome.kind)},
                          {"reason", outcome.reason},
                          {"ms", milliseconds(outcome.duration)}};
  if (!outcome.reply.empty()) stage["reply"] = outcome.reply;
  if (outcome.answer_at) stage["answer_at"] = phaseName(*outcome.answer_at);
  if (!outcome.allowed_by.empty()) stage["allowed_by"] = outcome.allowed_by;
  if (outcome.shadow) stage["shadow"] = true;
  if (outcome.kind == Verdict::Kind::Tag || outcome.scored || outcome.score != 0) stage["score"] = roundedScore(outcome.score);
  for (const auto& [key, value] : outcome.details) stage[key] = detailJson(value);
  for (const auto& [key, items] : outcome.detail_lists) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& item : items) {
      nlohmann::json entry = nlohmann::json::object();
      for (const auto& [name, value] : item) entry[name] = detailJson(value);
      list.push_back(std::move(entry));
    }
    stage[key] = std::move(list);
  }
  return stage;
}

nlohmann::json transactionRecord(const SessionFacts& session, const Transaction& transaction,
                                 std::string_view action, const std::string& reply) {
  nlohmann::json record = base(session, "transaction");
  record["transaction"] = transaction.id;
  record["tls"] = tlsRecord(session, transaction.downstream_tls);
  record["started"] = transaction.started_at;
  record["sender"] = transaction.sender.address();
  nlohmann::json recipients = nlohmann::json::array();
  for (const auto& recipient : transaction.recipients) {
    // The reply's class says what happened to this recipient: 2 accepted, 4 deferred, 5 refused.
    char reply_class = recipient.reply.empty() ? '?' : recipient.reply[0];
    const char* outcome = reply_class == '2' ? "accept" : reply_class == '4' ? "tempfail" : "reject";
    recipients.push_back({{"address", recipient.address}, {"reply", recipient.reply}, {"action", outcome}});
  }
  record["recipients"] = std::move(recipients);
  record["size"] = transaction.size;
  record["subject"] = transaction.subject;
  record["message_id"] = transaction.message_id;
  if (transaction.declared_size) record["declared_size"] = *transaction.declared_size;
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& outcome : transaction.outcomes) {
    stages.push_back(stageRecord(outcome));
  }
  record["stages"] = std::move(stages);
  // The message's score: what tags added, or else what a scoring stage (rules) found below its
  // threshold or refused it for, so a reviewer sees it either way.
  if (transaction.tagged) {
    record["score"] = roundedScore(transaction.score);
  } else {
    for (const auto& outcome : transaction.outcomes)
      if (outcome.scored && !outcome.shadow) record["score"] = roundedScore(outcome.score);
  }
  record["action"] = action;
  record["reply"] = reply;
  record["downstream_reply"] = transaction.downstream_reply;
  record["queue_id"] = transaction.queue_id;
  auto total = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - transaction.started);
  record["durations"] = {{"total_ms", milliseconds(total)}, {"downstream_ms", milliseconds(transaction.downstream_time)}};
  return record;
}

nlohmann::json commandRecord(const SessionFacts& session, std::string_view command, const Reply& reply) {
  nlohmann::json record = base(session, "command");
  record["command"] = command;
  record["action"] = actionOf(reply, false);
  record["reply"] = reply.summary();
  return record;
}

nlohmann::json connectionRecord(const SessionFacts& session, const Reply& reply, std::string_view reason) {
  nlohmann::json record = base(session, "connection");
  record["action"] = actionOf(reply, false);
  record["reply"] = reply.summary();
  record["reason"] = reason;
  return record;
}

nlohmann::json tlsFailureRecord(const SessionFacts& session, std::string_view reason) {
  nlohmann::json record = base(session, "connection");
  record["action"] = "none";  // nothing was refused: the connection could not be used
  record["reply"] = "";
  record["reason"] = "TLS handshake failed: " + std::string(reason);
  return record;
}

nlohmann::json sessionRecord(const SessionFacts& session, const std::vector<StageOutcome>& outcomes,
                             const std::optional<Reply>& refusal, std::string_view why) {
  nlohmann::json record = base(session, "session");
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& outcome : outcomes) stages.push_back(stageRecord(outcome));
  record["stages"] = std::move(stages);
  if (refusal) {
    record["action"] = actionOf(*refusal, false);
    record["reply"] = refusal->summary();
  } else {
    record["action"] = "none";
  }
  record["reason"] = why;
  return record;
}

}  // namespace mailgate
