#include "gateway/net/client_connection.h"

#include "gateway/net/proxy_protocol.h"
#include "gateway/net/thread_pool.h"
#include "gateway/net/worker.h"
#include "gateway/relay/outgoing_message.h"
#include "gateway/relay/trace_header.h"
#include "gateway/smtp/relay_policy.h"

namespace mailgate {
namespace {

namespace ev = session_event;

// Bytes a client may have sent ahead (pipelined) while a decision is pending, and replies it may
// leave unread, before the gateway stops reading from it: bounded memory per connection.
constexpr std::size_t max_input_ahead_octets = 256 * 1024;
constexpr std::size_t max_unread_output_octets = 1024 * 1024;
// How long the last replies may take to leave once a connection is closing: a client that
// pipelined many commands ending in QUIT and reads slowly still gets them all, the 221 included.
constexpr std::chrono::milliseconds close_linger = std::chrono::seconds(10);

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// C++20 deduces this for an aggregate by itself; clang before 17 needs the guide (P1816).
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

const Reply& shuttingDown() {
  static const Reply reply = Reply::of(421, "4.3.2", "Service shutting down, try again later");
  return reply;
}

}  // namespace

template <class Then>
void ClientConnection::runPhase(Phase phase, Then then) {
  const Pipeline& pipeline = *runtime_->pipeline;
  if (!pipeline.hooks(phase)) {
    then(PhaseResult{});
    return;
  }
  std::weak_ptr<ClientConnection> weak = shared_from_this();
  pipeline.run(stageInput(phase), worker_.jobs(), [weak, then = std::move(then)](PhaseResult result) mutable {
    auto self = weak.lock();
    if (!self || self->closing_) return;
    then(std::move(result));
  });
}

void ClientConnection::accept(Worker& worker, uv_stream_t* server) {
  std::shared_ptr<ClientConnection> connection(new ClientConnection(worker, worker.shared().runtime()));
  connection->self_ = connection;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&connection->tcp_)) != 0) {
    connection->closeConnection();
    return;
  }
  connection->start();
}

ClientConnection::ClientConnection(Worker& worker, std::shared_ptr<const Runtime> runtime)
    : worker_(worker), runtime_(std::move(runtime)), session_(runtime_->sessionSettings()) {
  uv_tcp_init(worker_.loop(), &tcp_);
  uv_timer_init(worker_.loop(), &idle_timer_);
  uv_timer_init(worker_.loop(), &command_timer_);
  tcp_.data = idle_timer_.data = command_timer_.data = this;
  open_handles_ = 3;
}

ClientConnection::~ClientConnection() = default;

void ClientConnection::start() {
  PeerAddress peer;
  peerAddress(&tcp_, peer);
  facts_.session = worker_.shared().nextSessionId();
  facts_.client_ip = peer.ip;
  facts_.client_port = peer.port;
  worker_.add(this);
  // Nagle plus delayed ACK would hold each reply ~40 ms (issue 2, point 9).
  uv_tcp_nodelay(&tcp_, 1);

  const ServerConfig& server = runtime_->config->server;
  if (!server.proxy_protocol) {
    begin({});
    return;
  }
  // Only a trusted proxy may say who the client is; anyone else is cut off before a word.
  bool trusted = false;
  for (const auto& source : server.proxy_sources) trusted = trusted || cidrContains(source, facts_.client_ip);
  if (!trusted) {
    worker_.shared().log().write(connectionRecord(facts_, Reply::of(421, "4.7.0", "Error: not a trusted proxy"),
                                                  "PROXY protocol from an address outside server.proxy_sources"));
    closeConnection();
    return;
  }
  awaiting_proxy_ = true;
  armTimers();
  startReading();
}

void ClientConnection::onProxyBytes(std::string_view bytes) {
  proxy_buffer_.append(bytes);
  auto parsed = parseProxyHeader(proxy_buffer_);
  if (parsed && !*parsed) {
    if (proxy_buffer_.size() < max_proxy_header_octets) return;
    parsed = std::unexpected(std::string("PROXY header: too long"));
  }
  if (!parsed) {
    worker_.shared().log().write(connectionRecord(facts_, Reply::of(421, "4.7.0", "Error: bad PROXY header"), parsed.error()));
    closeConnection();
    return;
  }
  awaiting_proxy_ = false;
  const ProxyHeader& header = **parsed;
  if (header.source_ip) {
    facts_.client_ip = *header.source_ip;
    facts_.client_port = header.source_port;
  }
  std::string rest = proxy_buffer_.substr(header.length);
  std::string().swap(proxy_buffer_);
  begin(rest);
}

void ClientConnection::begin(std::string_view early_bytes) {
  const ServerConfig& server = runtime_->config->server;
  // Bytes sent before the greeting wait in the session until it is sent.
  session_.receive(early_bytes);
  auto verdict = worker_.shared().limiter().acquire(facts_.client_ip, server.max_connections,
                                                    server.max_connections_per_client);
  if (verdict != ConnectionLimiter::Verdict::Accepted) {
    Reply reply = Reply::of(421, "4.7.0", verdict == ConnectionLimiter::Verdict::TooManyTotal
                                              ? "Error: too many connections, try again later"
                                              : "Error: too many connections from your address, try again later");
    worker_.shared().log().write(connectionRecord(facts_, reply, verdict == ConnectionLimiter::Verdict::TooManyTotal
                                                                     ? "max_connections"
                                                                     : "max_connections_per_client"));
    greet(reply);
    return;
  }
  limited_ = true;
  if (worker_.draining()) {
    greet(shuttingDown());
    return;
  }
  runPhase(Phase::Connect, [this](PhaseResult result) {
    if (result.kind == Verdict::Kind::TempFail || result.kind == Verdict::Kind::Reject) {
      worker_.shared().log().write(connectionRecord(facts_, result.reply, "connect stage"));
      greet(result.reply.code() == 421 ? result.reply : Reply::of(421, "4.7.0", "Error: connection refused"));
    } else {
      greet(Reply::of(220, "", runtime_->config->server.hostname + " ESMTP mailgate"));
    }
  });
}

void ClientConnection::greet(const Reply& reply) {
  greeted_ = true;
  session_.greet(reply);
  drive();
}

void ClientConnection::drive() {
  if (driving_ || closing_ || !greeted_) return;
  driving_ = true;
  auto keep_alive = self_;
  while (!closing_) {
    SessionEvent event = session_.next();
    if (std::holds_alternative<ev::NeedInput>(event)) {
      flush();
      armTimers();
      if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&tcp_)) < max_unread_output_octets) startReading();
      else stopReading();
      break;
    }
    if (std::holds_alternative<ev::AwaitingAnswer>(event)) {
      awaiting_ = true;
      uv_timer_stop(&idle_timer_);
      uv_timer_stop(&command_timer_);
      command_timer_armed_ = false;
      if (session_.bufferedInput() > max_input_ahead_octets) stopReading();
      break;
    }
    if (std::holds_alternative<ev::Closed>(event)) {
      flush();
      closeConnection();
      break;
    }
    handle(event);
  }
  driving_ = false;
}

void ClientConnection::handle(SessionEvent& event) {
  std::visit(Overloaded{
                 [](ev::NeedInput&) {}, [](ev::AwaitingAnswer&) {}, [](ev::Closed&) {},
                 [this](ev::Helo& helo) { onHelo(helo); },
                 [this](ev::Mail& mail) { onMail(mail); },
                 [this](ev::Rcpt& rcpt) { onRcpt(rcpt); },
                 [this](ev::DataChunk& chunk) { onData(chunk.bytes); },
                 [this](ev::EndOfData& end) { onEndOfData(end.size); },
                 [this](ev::DataRefused& refused) {
                   if (!transaction_) return;
                   transaction_->size = refused.size;
                   transaction_->outcomes.push_back(StageOutcome{refused.reply.code() == 552 ? "size_limit" : "smtp",
                                                                 Phase::EndOfData, Verdict::Kind::Reject, refused.reason,
                                                                 refused.reply.summary(), 0, false, false, {}, {}, {}});
                   if (downstream_) downstream_->reset();
                   finishTransaction(refused.reply);
                 },
                 [this](ev::Reset&) { abandonTransaction("reset"); },
                 [this](ev::Refused& refused) { onRefused(refused); },
                 [this](ev::Quit&) {
                   abandonTransaction("quit");
                   releaseDownstream();
                 },
             },
             event);
}

void ClientConnection::answer(const Reply& reply) {
  awaiting_ = false;
  session_.answer(reply);
  drive();
}

std::string ClientConnection::ehloReply() const {
  std::string lines = runtime_->config->server.hostname;
  auto max = runtime_->pipeline->maxMessageBytes();
  lines += max ? "\nSIZE " + std::to_string(*max) : std::string("\nSIZE");
  lines += "\nPIPELINING\n8BITMIME\nENHANCEDSTATUSCODES";
  return lines;
}

void ClientConnection::onHelo(ev::Helo& helo) {
  // Shutting down: a new transaction is not started (the current one was allowed to finish).
  if (draining_) {
    session_.close(shuttingDown());
    return;
  }
  facts_.helo = helo.name;
  esmtp_ = helo.extended;
  runPhase(Phase::Helo, [this, extended = helo.extended](PhaseResult result) {
    if (result.kind == Verdict::Kind::TempFail || result.kind == Verdict::Kind::Reject) {
      worker_.shared().log().write(commandRecord(facts_, extended ? "EHLO" : "HELO", result.reply));
      answer(result.reply);
      return;
    }
    answer(Reply::of(250, "", extended ? ehloReply() : runtime_->config->server.hostname));
  });
}

StageInput ClientConnection::stageInput(Phase phase) const {
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
  }
  if (phase == Phase::Rcpt) input.recipient = deciding_recipient_;
  input.hostname = runtime_->config->server.hostname;
  if (transaction_) input.scratch = transaction_->scratch;
  input.background = &worker_.jobs();
  return input;
}

void ClientConnection::onMail(ev::Mail& mail) {
  if (draining_) {
    session_.close(shuttingDown());
    return;
  }
  // Each transaction runs with the configuration current when it starts (a reload never changes
  // the rules under a transaction in flight).
  runtime_ = worker_.shared().runtime();
  session_.setSettings(runtime_->sessionSettings());
  const Config& config = *runtime_->config;
  Transaction& transaction = transaction_.emplace();
  transaction.id = facts_.session + "." + std::to_string(++transactions_);
  transaction.started_at = DecisionLog::timestamp();
  transaction.started = std::chrono::steady_clock::now();
  transaction.sender = mail.command.path;
  transaction.declared_size = mail.command.size;
  transaction.body = mail.command.body;
  transaction.spool = std::make_shared<Spool>(config.spool.path, config.spool.memory_limit);
  runPhase(Phase::MailFrom, [this](PhaseResult result) {
    Reply reply = result.reply;
    if (transaction_->absorb(std::move(result))) {
      answerAndFinish(reply);
      return;
    }
    answer(Reply::of(250, "2.1.0", "Ok"));
  });
}

void ClientConnection::onRcpt(ev::Rcpt& rcpt) {
  const Path& recipient = rcpt.command.path;
  if (auto refusal = relayRefusal(runtime_->config->server, recipient)) {
    transaction_->recipients.push_back({recipient.address(), refusal->summary()});
    answer(*refusal);
    return;
  }
  deciding_recipient_ = recipient;
  runPhase(Phase::Rcpt, [this, recipient](PhaseResult result) {
    deciding_recipient_.reset();
    Transaction& transaction = *transaction_;
    Reply refusal = result.reply;
    if (transaction.absorb(std::move(result))) {
      transaction.recipients.push_back({recipient.address(), refusal.summary()});
      answer(refusal);
      return;
    }
    if (runtime_->maildir) {
      Reply reply = Reply::of(250, "2.1.5", "Ok");
      transaction.recipients.push_back({recipient.address(), reply.summary()});
      transaction.accepted.push_back(recipient);
      answer(reply);
      return;
    }
    relayRecipient(recipient);
  });
}

void ClientConnection::relayRecipient(const Path& recipient) {
  const Config& config = *runtime_->config;
  if (!downstream_ || downstream_->broken()) {
    std::string helo = config.downstream.helo.empty() ? config.server.hostname : config.downstream.helo;
    downstream_ = worker_.downstreams().acquire(config.downstream, helo);
  }
  Transaction& transaction = *transaction_;
  auto asked = std::chrono::steady_clock::now();
  std::weak_ptr<ClientConnection> weak = shared_from_this();
  downstream_->recipient(transaction.sender, transaction.declared_size, transaction.body, recipient,
                         [weak, recipient, asked](const DownstreamAnswer& answer) {
                           const Reply& reply = answer.reply;
                           auto self = weak.lock();
                           if (!self || self->closing_ || !self->transaction_) return;
                           Transaction& transaction = *self->transaction_;
                           transaction.downstream_time += std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now() - asked);
                           transaction.recipients.push_back({recipient.address(), reply.summary()});
                           // RFC 5321 §4.3.2: 250 or 251 (Downstream lets no other 2xx or 3xx through).
                           if (reply.code() / 100 == 2) transaction.accepted.push_back(recipient);
                           self->answer(reply);
                         });
}

void ClientConnection::releaseDownstream() {
  if (!downstream_) return;
  worker_.downstreams().release(std::move(downstream_), runtime_->config->downstream);
  downstream_.reset();
}

void ClientConnection::onData(std::string_view bytes) {
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

void ClientConnection::onEndOfData(uint64_t size) {
  Transaction& transaction = *transaction_;
  transaction.size = size;
  transaction.data_received = true;
  if (transaction.spool_error) {
    Reply reply = Reply::of(451, "4.3.0", "Error: cannot store the message, try again later");
    transaction.outcomes.push_back(StageOutcome{"spool", Phase::EndOfData, Verdict::Kind::TempFail,
                                                *transaction.spool_error, reply.summary(), 0, false, false, {}, {}, {}});
    if (downstream_) downstream_->reset();
    answerAndFinish(reply);
    return;
  }
  runPhase(Phase::EndOfData, [this](PhaseResult result) {
    Reply refusal = result.reply;
    if (transaction_->absorb(std::move(result))) {
      if (downstream_) downstream_->reset();
      answerAndFinish(refusal);
      return;
    }
    deliver();
  });
}

void ClientConnection::deliver() {
  Transaction& transaction = *transaction_;
  TraceInfo trace{facts_.helo, facts_.client_ip, runtime_->config->server.hostname, esmtp_, transaction.id,
                  transaction.accepted, std::chrono::system_clock::now()};
  const std::string& hostname = runtime_->config->server.hostname;
  std::string headers = receivedHeader(trace);
  if (!transaction.auth_results.empty()) headers += authenticationResultsHeader(hostname, transaction.auth_results);
  std::vector<std::string> replaced;
  for (const auto& header : transaction.headers) {
    if (header.replaces) replaced.push_back(header.name);
    if (!header.removesOnly()) headers += header.line();
  }
  // RFC 8601 §5: a field claiming our authserv-id did not come from us and must not pass.
  auto forged = omittedHeaderFields(*transaction.spool, hostname, replaced);
  if (!forged) {
    Reply reply = unreadableMessageReply();
    if (downstream_) downstream_->reset();
    answerAndFinish(reply);
    return;
  }
  auto message = std::make_shared<const OutgoingMessage>(std::move(headers), transaction.spool, std::move(*forged));
  auto sent = std::chrono::steady_clock::now();
  std::weak_ptr<ClientConnection> weak = shared_from_this();
  // Downstream answers with 2xx, 4xx or 5xx only: a reply out of RFC 5321's sequence (250 to
  // DATA, 354 to the final dot) arrives here as 451 4.4.2, with the offending reply for the log.
  auto delivered = [weak, sent](const DownstreamAnswer& answer) {
    auto self = weak.lock();
    if (!self || self->closing_ || !self->transaction_) return;
    Transaction& transaction = *self->transaction_;
    transaction.downstream_time +=
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - sent);
    transaction.downstream_reply = (answer.violating_reply ? *answer.violating_reply : answer.reply).summary();
    self->answerAndFinish(answer.reply, answer.problem.empty() ? std::string() : "downstream: " + answer.problem);
  };
  if (runtime_->maildir) {
    auto runtime = runtime_;
    auto result = std::make_shared<std::expected<std::string, std::string>>();
    queueWork(
        worker_.loop(),
        [runtime, message, result] { *result = runtime->maildir->deliver(*message); },
        [delivered, result]() mutable {
          if (*result) {
            delivered({Reply::of(250, "2.0.0", "Ok: queued as " + **result), std::nullopt, {}});
          } else {
            delivered({Reply::of(451, "4.3.0", "Error: local delivery failed, try again later"), std::nullopt, {}});
          }
        });
    return;
  }
  if (!downstream_) {
    delivered({Downstream::unavailable("no connection"), std::nullopt, "no connection"});
    return;
  }
  downstream_->message(std::move(message), delivered);
}

void ClientConnection::onRefused(const ev::Refused& refused) {
  if (transaction_) {
    // Inside a transaction the refusal belongs to its one record (a refused RCPT as that
    // recipient's outcome; DATA's 554 after every recipient was refused shows in the action).
    if (refused.verb == "RCPT") transaction_->recipients.push_back({refused.argument, refused.reply.summary()});
    return;
  }
  std::string command = refused.verb.empty() ? std::string("(line too long)") : refused.verb;
  worker_.shared().log().write(commandRecord(facts_, command, refused.reply));
}

void ClientConnection::finishTransaction(const Reply& reply) {
  if (!transaction_) return;
  logTransaction(facts_, *transaction_, reply);
  transaction_.reset();
}

void ClientConnection::logTransaction(const SessionFacts& facts, const Transaction& transaction, const Reply& reply,
                                      std::string_view reason) {
  auto record = transactionRecord(facts, transaction, actionOf(reply, transaction.tagged), reply.summary());
  if (!reason.empty()) record["reason"] = reason;
  worker_.shared().log().write(record);
}

void ClientConnection::answerAndFinish(const Reply& reply, std::string_view reason) {
  // The client hears the reply before the record is built and written: strace put 45-70 µs
  // between the downstream's 250 and the client's, which every message's latency carried.
  std::optional<Transaction> finished = std::exchange(transaction_, std::nullopt);
  SessionFacts facts = facts_;  // answering may run a pipelined EHLO, which changes them
  answer(reply);
  if (finished) logTransaction(facts, *finished, reply, reason);
}

void ClientConnection::abandonTransaction(std::string_view why) {
  if (!transaction_) return;
  if (downstream_) downstream_->reset();
  Transaction& transaction = *transaction_;
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
  worker_.shared().log().write(record);
  transaction_.reset();
}

void ClientConnection::drain() {
  draining_ = true;
  if (!transaction_ && !session_.inTransaction() && !driving_ && !awaiting_) {
    session_.close(shuttingDown());
    drive();
  }
}

void ClientConnection::shutdown() {
  if (closing_) return;
  abandonTransaction("shutdown");
  session_.close(shuttingDown());
  flush();
  closeConnection();
}

void ClientConnection::flush() {
  if (!session_.hasOutput() || closing_) return;
  auto request = std::make_unique<WriteRequest>();
  request->bytes = session_.takeOutput();
  writeAtOnce(reinterpret_cast<uv_stream_t*>(&tcp_), request->bytes);
  if (request->bytes.empty()) return;
  request->owner = this;
  request->request.data = request.get();
  uv_buf_t buffer = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
  int status = uv_write(&request->request, reinterpret_cast<uv_stream_t*>(&tcp_), &buffer, 1,
                        [](uv_write_t* write, int) {
                          std::unique_ptr<WriteRequest> owned(static_cast<WriteRequest*>(write->data));
                          auto* self = static_cast<ClientConnection*>(owned->owner);
                          if (--self->writes_in_flight_ == 0 && self->closing_) {
                            self->closeConnection();
                          } else if (!self->reading_ && !self->closing_ && !self->awaiting_) {
                            self->drive();  // output drained: reading may resume
                          }
                        });
  if (status != 0) {
    closeConnection();
    return;
  }
  request.release();  // freed in the write callback
  ++writes_in_flight_;
}

void ClientConnection::startReading() {
  if (reading_ || closing_) return;
  reading_ = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t* handle, size_t, uv_buf_t* buffer) {
        auto* self = static_cast<ClientConnection*>(handle->data);
        *buffer = uv_buf_init(self->worker_.readBuffer(), Worker::read_buffer_octets);
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer) {
        static_cast<ClientConnection*>(stream->data)->onRead(nread, buffer);
      });
}

void ClientConnection::stopReading() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void ClientConnection::onRead(ssize_t nread, const uv_buf_t* buffer) {
  if (nread == 0) return;
  auto keep_alive = self_;
  if (nread < 0) {
    abandonTransaction(nread == UV_EOF ? "client disconnected" : "client connection error");
    closeConnection();
    return;
  }
  std::string_view bytes(buffer->base, static_cast<std::size_t>(nread));
  if (awaiting_proxy_) {
    onProxyBytes(bytes);
    return;
  }
  session_.receive(bytes);
  drive();
}

void ClientConnection::armTimers() {
  const ServerConfig& server = runtime_->config->server;
  uv_timer_start(&idle_timer_, [](uv_timer_t* timer) { static_cast<ClientConnection*>(timer->data)->onTimeout("idle timeout"); },
                 static_cast<uint64_t>(server.idle_timeout.count()), 0);
  // A line that never ends (one byte at a time, each resetting the idle timer) is cut off here.
  // It times one line: restarted whenever a line was completed since it was armed.
  bool progressed = session_.linesRead() != lines_at_command_timer_;
  if (session_.bufferedInput() > 0 && (!command_timer_armed_ || progressed)) {
    command_timer_armed_ = true;
    lines_at_command_timer_ = session_.linesRead();
    uv_timer_start(&command_timer_, [](uv_timer_t* timer) { static_cast<ClientConnection*>(timer->data)->onTimeout("command timeout"); },
                   static_cast<uint64_t>(server.command_timeout.count()), 0);
  } else if (session_.bufferedInput() == 0 && command_timer_armed_) {
    command_timer_armed_ = false;
    uv_timer_stop(&command_timer_);
  }
}

void ClientConnection::onTimeout(const char* which) {
  if (closing_) return;
  auto keep_alive = self_;
  Reply reply = Reply::of(421, "4.4.2", runtime_->config->server.hostname + " Error: timeout exceeded");
  abandonTransaction(which);
  worker_.shared().log().write(connectionRecord(facts_, reply, which));
  if (!greeted_) {  // still waiting for the PROXY header: the proxy gets no SMTP reply
    closeConnection();
    return;
  }
  session_.close(reply);
  drive();
}

void ClientConnection::closeConnection() {
  if (!closing_) {
    closing_ = true;
    abandonTransaction("connection closed");
    releaseDownstream();
    stopReading();
    uv_timer_stop(&idle_timer_);
    uv_timer_stop(&command_timer_);
    if (limited_) worker_.shared().limiter().release(facts_.client_ip);
    limited_ = false;
    worker_.remove(this);
  }
  // The last replies (221, 421) go out before the socket closes, but a client that never reads
  // must not keep the connection forever: after a short linger it is closed anyway (uv_close
  // cancels the writes).
  if (handles_closing_) return;
  if (writes_in_flight_ > 0 && !linger_expired_) {
    uv_timer_start(&idle_timer_, [](uv_timer_t* timer) {
      auto* self = static_cast<ClientConnection*>(timer->data);
      self->linger_expired_ = true;
      self->closeConnection();
    }, static_cast<uint64_t>(close_linger.count()), 0);
    return;
  }
  handles_closing_ = true;
  auto on_close = [](uv_handle_t* handle) {
    auto* self = static_cast<ClientConnection*>(handle->data);
    if (--self->open_handles_ == 0) self->self_.reset();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_timer_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&command_timer_), on_close);
}

}  // namespace mailgate
