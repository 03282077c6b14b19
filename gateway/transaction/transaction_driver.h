#pragma once
// The transaction driver: one SMTP session's events (connect, HELO, MAIL, RCPT, the message's
// bytes, the end of data, reset, end) taken through the pipeline's phases to a delivery target,
// leaving the decision records. It holds no socket and no loop: the host (a client connection, or
// `mailgate check`) feeds it events and gives it the job runner, the network access for stages,
// the delivery target and the log, so a session and `mailgate check` cannot drift apart.
//
// Each event that needs a decision gets it through `Answer`, exactly once, possibly before the
// call returns: nullopt means "accepted, with the session's own reply"; a Reply is given as it is
// (a refusal, or the downstream's own words). After end(), or once the driver is destroyed, no
// answer comes any more.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/pipeline/pipeline.h"
#include "gateway/smtp/address.h"
#include "gateway/transaction/delivery_target.h"
#include "gateway/transaction/runtime.h"
#include "gateway/transaction/transaction_record.h"

namespace mailgate {

class DriverHost {
 public:
  virtual ~DriverHost() = default;
  // The current snapshot; each transaction takes the one current when it starts.
  virtual std::shared_ptr<const Runtime> currentRuntime() = 0;
  virtual JobRunner& jobs() = 0;
  virtual NetworkAccess* network() = 0;
  virtual DeliveryTarget& deliveryTarget() = 0;
  // One decision record, for the log.
  virtual void record(const nlohmann::json& record) = 0;
};

class TransactionDriver {
 public:
  using Answer = std::move_only_function<void(std::optional<Reply>)>;

  TransactionDriver(DriverHost& host, SessionFacts facts);
  ~TransactionDriver();
  TransactionDriver(const TransactionDriver&) = delete;
  TransactionDriver& operator=(const TransactionDriver&) = delete;

  // The greeting: nullopt for the banner, or the refusal to greet with (421 closes, 554 waits
  // for QUIT: RFC 5321 §3.1).
  void connect(Answer answer);
  void helo(std::string name, bool extended, Answer answer);
  void mail(const MailCommand& command, Answer answer);
  void rcpt(const RcptCommand& command, Answer answer);
  // The message as it arrives, dot-unstuffed.
  void messageBytes(std::string_view bytes);
  // The final reply always comes as a Reply (the downstream's, the Maildir's or a refusal).
  void endOfData(uint64_t size, Answer answer);
  // The session refused the message itself (bare LF, too long, too big) and already replied.
  void dataRefused(const Reply& reply, std::string reason, uint64_t size);
  // A command the session refused alone (syntax, sequence, limits), for the record.
  void commandRefused(const std::string& verb, const std::string& argument, const Reply& reply);
  // RSET, or HELO/EHLO inside a transaction.
  void reset();
  // The client's leg is encrypted now (STARTTLS done, or implicit TLS): the session starts over
  // from before HELO (RFC 3207 §4.2), and records and the Received: header say TLS from here.
  void tlsStarted(SessionTls tls);
  // The session is over: QUIT, the client left, a timeout, shutting down. Logs what was open and,
  // when the session had no transaction, its one "session" record. Further calls do nothing.
  void end(std::string_view why);

  bool inTransaction() const { return transaction_.has_value(); }
  const SessionFacts& facts() const { return facts_; }
  const Runtime& runtime() const { return *runtime_; }

 private:
  // What the connect and HELO stages found, carried into every transaction of the session.
  struct SessionLevel {
    std::vector<StageOutcome> outcomes;
    std::vector<HeaderField> headers;
    std::vector<std::string> auth_results;
    double score = 0;
    bool tagged = false;
    std::optional<DelayedRefusal> delayed;
    // Takes in one phase's result; returns it back when the phase refused.
    void absorb(PhaseResult& result);
  };

  // Runs `phase` and calls `then` with the result, unless the driver was destroyed, the session
  // ended or the transaction changed meanwhile.
  void runPhase(Phase phase, std::move_only_function<void(PhaseResult)> then);
  StageInput stageInput(Phase phase) const;
  void startTransaction(const MailCommand& command);
  // The refusal decided at an earlier phase that applies at `phase`, if any.
  const DelayedRefusal* delayedRefusal(Phase phase) const;
  void relayRecipient(const Path& recipient, Answer answer);
  void deliver(Answer answer);
  // Answers the client first, then writes the transaction's record (the reply is what the
  // client waits for; the record is not).
  // `reason` goes into the record when the reply is not what it seems (the downstream broke the
  // protocol, timed out).
  void finish(const Reply& reply, Answer& answer, std::string_view reason = {});
  void writeRecord(const SessionFacts& facts, const Transaction& transaction, const Reply& reply,
                   std::string_view reason = {});
  void abandon(std::string_view why);
  Reply greetingRefusal(const PhaseResult& result) const;

  DriverHost& host_;
  SessionFacts facts_;
  std::shared_ptr<const Runtime> runtime_;
  std::shared_ptr<Scratch> session_scratch_ = std::make_shared<Scratch>();
  SessionLevel connect_level_;
  SessionLevel helo_level_;
  // The refused greeting, or the last refused HELO: what the session record says it came to.
  std::optional<Reply> session_refusal_;
  std::optional<Transaction> transaction_;
  std::optional<Path> deciding_recipient_;
  uint64_t transactions_ = 0;         // started, for their ids
  uint64_t transaction_records_ = 0;  // written: a session with none leaves a session record
  uint64_t generation_ = 0;           // bumped when a transaction or the session ends
  bool ended_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace mailgate
