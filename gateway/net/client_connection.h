#pragma once
// One client's SMTP connection: moves bytes between the socket and its SmtpSession, runs the
// pipeline for each decision the session asks for, and relays accepted transactions to the
// downstream (or the embedded Maildir). Lives on one worker's loop; owned by itself until its
// handles are closed, so late callbacks (thread pool, downstream) find it through a weak_ptr.

#include <uv.h>

#include <memory>
#include <optional>
#include <string>

#include "gateway/log/transaction_record.h"
#include "gateway/net/shared_state.h"
#include "gateway/net/uv_util.h"
#include "gateway/relay/downstream.h"
#include "gateway/smtp/smtp_session.h"

namespace mailgate {

class Worker;

class ClientConnection : public std::enable_shared_from_this<ClientConnection> {
 public:
  static void accept(Worker& worker, uv_stream_t* server);
  ~ClientConnection();

  // Shutting down: close now with 421 4.3.2 if idle, else after the transaction in flight.
  void drain();
  // Close now with 421 4.3.2 (the drain bound passed).
  void shutdown();

 private:
  ClientConnection(Worker& worker, std::shared_ptr<const Runtime> runtime);
  void start();
  void onProxyBytes(std::string_view bytes);
  void begin(std::string_view early_bytes);
  void greet(const Reply& reply);
  void drive();
  void handle(SessionEvent& event);
  void onHelo(session_event::Helo& helo);
  void onMail(session_event::Mail& mail);
  void onRcpt(session_event::Rcpt& rcpt);
  void onData(std::string_view bytes);
  void onEndOfData(uint64_t size);
  void onRefused(const session_event::Refused& refused);
  void deliver();
  void answer(const Reply& reply);
  void finishTransaction(const Reply& reply);
  // Answers the client with the transaction's final reply, then logs the transaction (with
  // `reason` when the reply is not what it seems: the downstream broke the protocol, timed out).
  void answerAndFinish(const Reply& reply, std::string_view reason = {});
  void logTransaction(const SessionFacts& facts, const Transaction& transaction, const Reply& reply,
                      std::string_view reason = {});
  void abandonTransaction(std::string_view why);
  void relayRecipient(const Path& recipient);
  // Hands the downstream connection back to the worker's pool for the next session.
  void releaseDownstream();
  StageInput stageInput(Phase phase) const;
  std::string ehloReply() const;

  void flush();
  void startReading();
  void stopReading();
  void armTimers();
  void onTimeout(const char* which);
  void closeConnection();
  void onRead(ssize_t nread, const uv_buf_t* buffer);

  // Runs `phase` through the pipeline and calls `then` on this loop with the result, unless the
  // connection closed meanwhile.
  template <class Then>
  void runPhase(Phase phase, Then then);

  Worker& worker_;
  uv_tcp_t tcp_{};
  uv_timer_t idle_timer_{};
  uv_timer_t command_timer_{};
  int open_handles_ = 0;
  std::shared_ptr<ClientConnection> self_;
  std::shared_ptr<const Runtime> runtime_;  // refreshed at each transaction's start
  SmtpSession session_;
  SessionFacts facts_;
  bool esmtp_ = false;
  bool limited_ = false;  // counted in the connection limiter
  std::optional<Transaction> transaction_;
  std::optional<Path> deciding_recipient_;  // the RCPT the pipeline is deciding on
  uint64_t transactions_ = 0;
  std::shared_ptr<Downstream> downstream_;
  bool awaiting_proxy_ = false;  // server.proxy_protocol: the PROXY header comes first
  std::string proxy_buffer_;
  bool greeted_ = false;
  bool driving_ = false;
  bool awaiting_ = false;  // the session waits for answer()
  bool reading_ = false;
  bool closing_ = false;
  bool handles_closing_ = false;
  bool linger_expired_ = false;
  bool draining_ = false;
  bool command_timer_armed_ = false;
  uint64_t lines_at_command_timer_ = 0;
  std::size_t writes_in_flight_ = 0;
};

}  // namespace mailgate
