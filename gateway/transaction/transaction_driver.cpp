#include "gateway/transaction/transaction_driver.h"

#include <chrono>

#include "gateway/log/decision_log.h"
#include "gateway/pipeline/allowance.h"
#include "gateway/message/header_summary.h"
#include "gateway/message/trace_header.h"
#include "gateway/smtp/queue_id.h"
#include "gateway/smtp/replies.h"

namespace mailgate {
namespace {

std::string joinedLines(const Reply& reply) {
  std::string text;
  for (const auto& line : reply.lines()) text += (text.empty() ? "" : "\n") + line;
  return text;
}

// Never an open relay: a recipient outside server.domains is refused, except <postmaster>
// without a domain, which RFC 5321 §4.5.1 says must be accepted.
std::optional<Reply> relayRefusal(const ServerConfig& server, const Path& recipient) {
  if (recipient.mailbox.domain.empty() || server.servesDomain(recipient.mailbox.domain)) return std::nullopt;
  return replies::relayDenied(recipient.address());
}

// The Subject and Message-ID for the record, read once the message is in (a message refused
// while arriving has what arrived of its header). Unreadable: the record says nothing of them.
void summarizeMessage(Transaction& transaction) {
  if (!transaction.spool || transaction.spool->size() == 0) return;
  auto summary = summarizeHeader(*transaction.spool);
  if (!summary) return;
  transaction.subject = std::move(summary->subject);
  transaction.message_id = std::move(summary->message_id);
}

}  // namespace

TransactionDriver::TransactionDriver(DriverHost& host, SessionFacts facts)
    : host_(host), facts_(std::move(facts)), runtime_(host.currentRuntime()) {}

TransactionDriver::~TransactionDriver() { *alive_ = false; }

void TransactionDriver::SessionLevel::absorb(PhaseResult& result) {
  for (auto& outcome : result.outcomes) outcomes.push_back(std::move(outcome));
  result.outcomes.clear();
  if (!delayed && result.delayed) delayed = std::move(result.delayed);
  if (result.ends()) return;
  for (auto& header : result.headers) headers.push_back(std::move(header));
  for (auto& entry : result.auth_results) auth_results.push_back(std::move(entry));
  score += result.score;
  tagged |= result.kind == Verdict::Kind::Tag;
}

void TransactionDriver::runPhase(Phase phase, std::move_only_function<void(PhaseResult)> then) {
  const Pipeline& pipeline = *runtime_->pipeline;
  if (!pipeline.hooks(phase)) {
    then(PhaseResult{});
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  uint64_t generation = generation_;
  pipeline.run(stageInput(phase), host_.jobs(),
               [this, alive, generation, then = std::move(then)](PhaseResult result) mutable {
                 auto still = alive.lock();
                 if (!still || !*still || ended_ || generation != generation_) return;
                 then(std::move(result));
               });
}

StageInput TransactionDriver::stageInput(Phase phase) const {
  StageInput input;
  input.phase = phase;
  input.client_ip = facts_.client_ip;
  input.client_port = facts_.client_port;
  input.helo = facts_.helo;
  if (transaction_) {
    input.sender = transaction_->sender;
    input.declared_size = transaction_->declared_size;
    input.body = transaction_->body;
    input.recipients = transaction_->accepted;
    input.message = transaction_->spool;
    input.message_size = transaction_->size;
    input.scratch = transaction_->scratch;
  }
  if (phase == Phase::Rcpt) input.recipient = deciding_recipient_;
  input.hostname = runtime_->config->server.hostname;
  input.session_scratch = session_scratch_;
  input.background = &host_.jobs();
  input.network = host_.network();
  return input;
}

Reply TransactionDriver::greetingRefusal(const PhaseResult& result) const {
  // RFC 5321 §3.1 and §4.3.2: a greeting is 220, 421 (closing) or 554 (refused, until QUIT).
  // The stage's own enhanced code and text are kept; only the code is fitted.
  int code = result.kind == Verdict::Kind::TempFail ? 421 : 554;
  if (result.reply.code() == code) return result.reply;
  auto fitted = Reply::make(code, result.reply.enhanced(), joinedLines(result.reply));
  if (fitted) return *fitted;
  return code == 421 ? Reply::of(421, "4.7.0", "Error: connection refused, try again later")
                     : Reply::of(554, "5.7.1", "Error: connection refused");
}

void TransactionDriver::connect(Answer answer) {
  runPhase(Phase::Connect, [this, answer = std::move(answer)](PhaseResult result) mutable {
    bool refused = result.ends();
    std::optional<Reply> refusal;
    if (refused) refusal = greetingRefusal(result);
    connect_level_.absorb(result);
    if (refusal) session_refusal_ = refusal;
    answer(refusal);
  });
}

void TransactionDriver::helo(std::string name, bool extended, Answer answer) {
  facts_.helo = std::move(name);
  facts_.esmtp = extended;
  // A second HELO/EHLO starts the session over (RFC 5321 §4.1.4): what the first one's stages
  // said no longer holds.
  helo_level_ = SessionLevel{};
  if (session_refusal_ && session_refusal_->code() != 554) session_refusal_.reset();
  runPhase(Phase::Helo, [this, extended, answer = std::move(answer)](PhaseResult result) mutable {
    bool refused = result.ends();
    Reply refusal = result.reply;
    helo_level_.absorb(result);
    if (!refused) {
      answer(std::nullopt);
      return;
    }
    session_refusal_ = refusal;
    SessionFacts facts = facts_;
    answer(refusal);
    host_.record(commandRecord(facts, extended ? "EHLO" : "HELO", refusal));
  });
}

void TransactionDriver::tlsStarted(SessionTls tls) {
  facts_.tls = std::move(tls);
  // RFC 3207 §4.2: what the client said before TLS is forgotten; it must say EHLO again.
  facts_.helo.clear();
  facts_.esmtp = false;
  helo_level_ = SessionLevel{};
}

void TransactionDriver::startTransaction(const MailCommand& command) {
  // Each transaction runs with the configuration current when it starts (a reload never
  // changes the rules under a transaction in flight).
  runtime_ = host_.currentRuntime();
  const Config& config = *runtime_->config;
  Transaction& transaction = transaction_.emplace();
  transaction.id = facts_.session + "." + std::to_string(++transactions_);
  transaction.started_at = DecisionLog::timestamp();
  transaction.started = std::chrono::steady_clock::now();
  transaction.sender = command.path;
  transaction.declared_size = command.size;
  transaction.body = command.body;
  transaction.spool = std::make_shared<Spool>(config.spool.path, config.spool.memory_limit);
  for (const SessionLevel* level : {&connect_level_, &helo_level_}) {
    transaction.outcomes.insert(transaction.outcomes.end(), level->outcomes.begin(), level->outcomes.end());
    transaction.headers.insert(transaction.headers.end(), level->headers.begin(), level->headers.end());
    transaction.auth_results.insert(transaction.auth_results.end(), level->auth_results.begin(),
                                    level->auth_results.end());
    transaction.score += level->score;
    transaction.tagged |= level->tagged;
  }
}

const DelayedRefusal* TransactionDriver::delayedRefusal(Phase phase) const {
  // An allow-list match since the refusal was decided (the sender is a partner's) skips it.
  auto allowed = [&](const DelayedRefusal& delayed) {
    for (const Scratch* scratch : {transaction_ ? transaction_->scratch.get() : nullptr, session_scratch_.get()}) {
      if (!scratch) continue;
      if (auto allowance = scratch->find<Allowance>(); allowance && allowance->covers(delayed.stage)) return true;
    }
    return false;
  };
  const std::optional<DelayedRefusal>* candidates[] = {&connect_level_.delayed, &helo_level_.delayed,
                                                        transaction_ ? &transaction_->delayed : nullptr};
  for (const auto* delayed : candidates) {
    if (delayed && *delayed && (*delayed)->answer_at <= phase && !allowed(**delayed)) return &**delayed;
  }
  return nullptr;
}

void TransactionDriver::mail(const MailCommand& command, Answer answer) {
  startTransaction(command);
  if (const DelayedRefusal* delayed = delayedRefusal(Phase::MailFrom)) {
    Reply reply = delayed->reply;
    finish(reply, answer);
    return;
  }
  runPhase(Phase::MailFrom, [this, answer = std::move(answer)](PhaseResult result) mutable {
    Reply reply = result.reply;
    if (transaction_->absorb(std::move(result))) {
      finish(reply, answer);
      return;
    }
    answer(std::nullopt);
  });
}

void TransactionDriver::rcpt(const RcptCommand& command, Answer answer) {
  // The session asks only inside a transaction; a host that does not is answered as one.
  if (!transaction_) {
    answer(replies::needMail());
    return;
  }
  const Path& recipient = command.path;
  if (auto refusal = relayRefusal(runtime_->config->server, recipient)) {
    transaction_->recipients.push_back({recipient.address(), refusal->summary()});
    answer(*refusal);
    return;
  }
  if (const DelayedRefusal* delayed = delayedRefusal(Phase::Rcpt)) {
    Reply reply = delayed->reply;
    transaction_->recipients.push_back({recipient.address(), reply.summary()});
    answer(reply);
    return;
  }
  deciding_recipient_ = recipient;
  runPhase(Phase::Rcpt, [this, recipient, answer = std::move(answer)](PhaseResult result) mutable {
    deciding_recipient_.reset();
    Reply refusal = result.reply;
    if (transaction_->absorb(std::move(result))) {
      transaction_->recipients.push_back({recipient.address(), refusal.summary()});
      answer(refusal);
      return;
    }
    relayRecipient(recipient, std::move(answer));
  });
}

void TransactionDriver::relayRecipient(const Path& recipient, Answer answer) {
  Transaction& transaction = *transaction_;
  auto asked = std::chrono::steady_clock::now();
  std::weak_ptr<bool> alive = alive_;
  uint64_t generation = generation_;
  host_.deliveryTarget().recipient(
      *runtime_, Envelope{transaction.sender, transaction.declared_size, transaction.body}, recipient,
      [this, alive, generation, recipient, asked, answer = std::move(answer)](std::optional<Reply> reply) mutable {
        auto still = alive.lock();
        if (!still || !*still || ended_ || generation != generation_ || !transaction_) return;
        Transaction& transaction = *transaction_;
        transaction.downstream_time +=
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - asked);
        const Reply& given = reply ? *reply : replies::recipientAccepted();
        transaction.recipients.push_back({recipient.address(), given.summary()});
        if (given.positive()) transaction.accepted.push_back(recipient);
        answer(std::move(reply));
      });
}

void TransactionDriver::messageBytes(std::string_view bytes) {
  if (!transaction_) return;
  Transaction& transaction = *transaction_;
  transaction.data_received = true;
  if (transaction.spool_error) return;
  auto appended = transaction.spool->append(bytes);
  if (!appended) {
    transaction.spool_error = appended.error();
    return;
  }
  const Pipeline& pipeline = *runtime_->pipeline;
  if (pipeline.readsMessageWhileArriving()) pipeline.messageBytes(stageInput(Phase::EndOfData), bytes);
}

void TransactionDriver::endOfData(uint64_t size, Answer answer) {
  if (!transaction_) {
    answer(replies::needMail());
    return;
  }
  Transaction& transaction = *transaction_;
  transaction.size = size;
  transaction.data_received = true;
  if (!transaction.spool_error) summarizeMessage(transaction);
  if (transaction.spool_error) {
    const Reply& reply = replies::cannotStoreMessage();
    transaction.outcomes.push_back(StageOutcome{"spool", Phase::EndOfData, Verdict::Kind::TempFail,
                                                *transaction.spool_error, reply.summary(), 0, false, false, {}, {}, {}, {}});
    host_.deliveryTarget().reset();
    finish(reply, answer);
    return;
  }
  if (const DelayedRefusal* delayed = delayedRefusal(Phase::EndOfData)) {
    Reply reply = delayed->reply;
    host_.deliveryTarget().reset();
    finish(reply, answer);
    return;
  }
  runPhase(Phase::EndOfData, [this, answer = std::move(answer)](PhaseResult result) mutable {
    Reply refusal = result.reply;
    if (transaction_->absorb(std::move(result))) {
      host_.deliveryTarget().reset();
      finish(refusal, answer);
      return;
    }
    deliver(std::move(answer));
  });
}

void TransactionDriver::deliver(Answer answer) {
  Transaction& transaction = *transaction_;
  const std::string& hostname = runtime_->config->server.hostname;
  TraceInfo trace{facts_.helo, facts_.client_ip, hostname, facts_.esmtp, transaction.id, transaction.accepted,
                  std::chrono::system_clock::now()};
  std::optional<TraceTls> tls;
  if (facts_.tls) tls = TraceTls{facts_.tls->version, facts_.tls->cipher};
  std::string headers = receivedHeader(trace, tls);
  if (!transaction.auth_results.empty()) headers += authenticationResultsHeader(hostname, transaction.auth_results);
  std::vector<std::string> replaced;
  for (const auto& header : transaction.headers) {
    if (header.replaces) replaced.push_back(header.name);
    if (!header.removesOnly()) headers += header.line();
  }
  // RFC 8601 §5: a field claiming our authserv-id did not come from us and must not pass.
  auto forged = omittedHeaderFields(*transaction.spool, hostname, replaced);
  if (!forged) {
    Reply reply = replies::cannotReadMessage();
    host_.deliveryTarget().reset();
    finish(reply, answer);
    return;
  }
  auto message = std::make_shared<const OutgoingMessage>(std::move(headers), transaction.spool, std::move(*forged));
  auto sent = std::chrono::steady_clock::now();
  std::weak_ptr<bool> alive = alive_;
  uint64_t generation = generation_;
  host_.deliveryTarget().message(
      *runtime_, std::move(message),
      [this, alive, generation, sent, answer = std::move(answer)](DeliveryAnswer delivered) mutable {
        auto still = alive.lock();
        if (!still || !*still || ended_ || generation != generation_ || !transaction_) return;
        Transaction& transaction = *transaction_;
        transaction.downstream_time +=
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - sent);
        transaction.downstream_tls = delivered.encrypted;
        const Reply& downstream = delivered.downstream_reply ? *delivered.downstream_reply : delivered.reply;
        transaction.downstream_reply = downstream.summary();
        transaction.queue_id = queueIdOf(downstream);
        // RFC 5321 §4.3.2: the end of data is answered 250, 4xx or 5xx; anything else must not
        // reach the client as such (a 2xx from nowhere would lose the message).
        const Reply& reply = delivered.reply;
        bool in_protocol = reply.code() == 250 || reply.transient() || reply.permanent();
        std::string reason = delivered.problem.empty() ? std::string() : "downstream: " + delivered.problem;
        finish(in_protocol ? reply : replies::downstreamBrokeProtocol("reply " + reply.summary() + " to the end of data"),
               answer, reason);
      });
}

void TransactionDriver::finish(const Reply& reply, Answer& answer, std::string_view reason) {
  std::optional<Transaction> finished = std::exchange(transaction_, std::nullopt);
  ++generation_;
  // The record before the answer: answering may run what the client pipelined behind the dot (an
  // EHLO that changes the facts, a QUIT that ends the session), and the session's end must know
  // the session had a transaction.
  if (finished) writeRecord(facts_, *finished, reply, reason);
  answer(reply);
}

void TransactionDriver::writeRecord(const SessionFacts& facts, const Transaction& transaction, const Reply& reply,
                                    std::string_view reason) {
  ++transaction_records_;
  auto record = transactionRecord(facts, transaction, actionOf(reply, transaction.tagged), reply.summary());
  if (!reason.empty()) record["reason"] = reason;
  host_.record(record);
}

void TransactionDriver::dataRefused(const Reply& reply, std::string reason, uint64_t size) {
  if (!transaction_) return;
  Transaction& transaction = *transaction_;
  transaction.size = size;
  if (!transaction.spool_error) summarizeMessage(transaction);
  transaction.outcomes.push_back(StageOutcome{reply.code() == 552 ? "size_limit" : "smtp", Phase::EndOfData,
                                              Verdict::Kind::Reject, std::move(reason), reply.summary(), 0, false,
                                              false, {}, {}, {}, {}});
  host_.deliveryTarget().reset();
  std::optional<Transaction> finished = std::exchange(transaction_, std::nullopt);
  ++generation_;
  writeRecord(facts_, *finished, reply);
}

void TransactionDriver::commandRefused(const std::string& verb, const std::string& argument, const Reply& reply) {
  if (transaction_) {
    // Inside a transaction the refusal belongs to its one record (a refused RCPT as that
    // recipient's outcome; DATA's 554 after every recipient was refused shows in the action).
    if (verb == "RCPT") transaction_->recipients.push_back({argument, reply.summary()});
    return;
  }
  // A MAIL refused for its declared SIZE is a transaction refused by the size limit: its record
  // has the sender and says why, as any refused transaction's does.
  if (verb == "MAIL" && reply.code() == 552) {
    if (auto mail = parseMailCommand(argument); mail && mail->size) {
      startTransaction(*mail);
      uint64_t limit = runtime_->pipeline->maxMessageBytes().value_or(0);
      transaction_->outcomes.push_back(StageOutcome{"size_limit", Phase::MailFrom, Verdict::Kind::Reject,
                                                    "declared SIZE " + std::to_string(*mail->size) + " exceeds " +
                                                        std::to_string(limit),
                                                    reply.summary(), 0, false, false, {}, {}, {}, {}});
      std::optional<Transaction> finished = std::exchange(transaction_, std::nullopt);
      ++generation_;
      writeRecord(facts_, *finished, reply);
      return;
    }
  }
  host_.record(commandRecord(facts_, verb.empty() ? std::string("(line too long)") : verb, reply));
}

void TransactionDriver::reset() { abandon("reset"); }

void TransactionDriver::abandon(std::string_view why) {
  if (!transaction_) return;
  host_.deliveryTarget().reset();
  std::optional<Transaction> abandoned = std::exchange(transaction_, std::nullopt);
  ++generation_;
  Transaction& transaction = *abandoned;
  // A transaction that ended with every recipient refused is logged as that refusal, so that
  // "why was this rejected" finds it; otherwise it was the client's choice to stop.
  std::string action = "abandoned";
  std::string reply;
  if (transaction.accepted.empty() && !transaction.recipients.empty()) {
    reply = transaction.recipients.back().reply;
    action = !reply.empty() && reply[0] == '4' ? "tempfail" : "reject";
  }
  auto record = transactionRecord(facts_, transaction, action, reply);
  record["reason"] = why;
  ++transaction_records_;
  host_.record(record);
}

void TransactionDriver::end(std::string_view why) {
  if (ended_) return;
  abandon(why);
  ended_ = true;
  ++generation_;
  host_.deliveryTarget().release();
  if (transaction_records_ > 0) return;
  std::vector<StageOutcome> outcomes = connect_level_.outcomes;
  outcomes.insert(outcomes.end(), helo_level_.outcomes.begin(), helo_level_.outcomes.end());
  host_.record(sessionRecord(facts_, outcomes, session_refusal_, why));
}

}  // namespace mailgate
