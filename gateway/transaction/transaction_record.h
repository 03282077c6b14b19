#pragma once
// What one transaction leaves in the decision log, gathered while it runs.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/pipeline/pipeline.h"
#include "gateway/smtp/address.h"
#include "gateway/spool/spool.h"

namespace mailgate {

struct RecipientOutcome {
  std::string address;
  std::string reply;  // "250 2.1.5 Ok", "554 5.7.1 Relay access denied"
};

struct Transaction {
  std::string id;
  std::string started_at;  // DecisionLog::timestamp()
  std::chrono::steady_clock::time_point started;
  Path sender;
  std::optional<uint64_t> declared_size;
  BodyType body = BodyType::Unspecified;
  std::vector<Path> accepted;  // recipients the client heard 2xx for
  std::vector<RecipientOutcome> recipients;
  std::shared_ptr<Spool> spool;
  std::optional<std::string> spool_error;
  uint64_t size = 0;
  bool data_received = false;
  std::vector<HeaderField> headers;       // trace headers from stages, prepended at delivery
  std::vector<std::string> auth_results;  // for the one Authentication-Results header
  double score = 0;
  bool tagged = false;
  std::vector<StageOutcome> outcomes;
  std::shared_ptr<Scratch> scratch = std::make_shared<Scratch>();
  std::optional<DelayedRefusal> delayed;  // decided at MAIL, answered at a later phase

  // Takes in one phase's result; true when it ended the transaction (TempFail or Reject).
  bool absorb(PhaseResult result);
  std::string downstream_reply;
  std::string queue_id;  // the downstream's, from its reply to the end of data (queueIdOf)
  std::chrono::microseconds downstream_time{0};
  bool downstream_tls = false;  // the message went to the downstream over TLS
  // Read once at the end of data (summarizeHeader); empty when no message came or it has none.
  std::string subject;
  std::string message_id;
};

// What the client's TLS handshake agreed on (RFC 8446 names: "TLSv1.3", "TLS_AES_256_GCM_SHA384").
struct SessionTls {
  std::string version;
  std::string cipher;
  std::string sni;  // the name the client asked for, "" when none
};

struct SessionFacts {
  std::string session;
  std::string client_ip;
  uint16_t client_port = 0;
  std::string helo;
  bool esmtp = false;  // the client said EHLO
  std::optional<SessionTls> tls;  // set once the client's leg is encrypted
};

// The action a reply stands for: 2xx accept (or tag when a stage tagged), 4xx tempfail, 5xx reject.
std::string actionOf(const Reply& reply, bool tagged);

// One stage's outcome as the log writes it (also `mailgate check --json`).
nlohmann::json stageRecord(const StageOutcome& outcome);
nlohmann::json transactionRecord(const SessionFacts& session, const Transaction& transaction,
                                 std::string_view action, const std::string& reply);
nlohmann::json commandRecord(const SessionFacts& session, std::string_view command, const Reply& reply);
nlohmann::json connectionRecord(const SessionFacts& session, const Reply& reply, std::string_view reason);
// A TLS handshake that failed (STARTTLS or implicit TLS): the connection is closed, no reply.
nlohmann::json tlsFailureRecord(const SessionFacts& session, std::string_view reason);
// A session that ended without a transaction: what the connect and HELO stages said, the refused
// greeting or HELO if there was one (else action "none"), and why it ended.
nlohmann::json sessionRecord(const SessionFacts& session, const std::vector<StageOutcome>& outcomes,
                             const std::optional<Reply>& refusal, std::string_view why);

}  // namespace mailgate
