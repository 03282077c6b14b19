#pragma once
// One connection to the downstream mailbox server, driven by SmtpClient. It opens at the first
// accepted recipient of a transaction, relays each RCPT, sends the message after the content
// stages passed, and is reused for the session's next transaction. Every handler is called exactly
// once, on the loop: with the downstream's reply, with 451 4.4.1 when the downstream is
// unreachable, times out or drops the connection, or with 451 4.4.2 when it breaks the protocol
// (a reply RFC 5321 §4.3.2 does not allow at that point, such as 250 to DATA, or one that is not
// an SMTP reply). The downstream never gets the final "." of a message the gateway did not fully
// send, so a failure cannot deliver part of a message.

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gateway/config/config.h"
#include "gateway/message/outgoing_message.h"
#include "gateway/smtp/smtp_client.h"
#include "gateway/spool/spool.h"
#include "gateway/tls/server_tls.h"
#include "gateway/tls/tls_stream.h"

namespace mailgate {

// What one relayed step came to.
struct DownstreamAnswer {
  // For the client: the downstream's own reply (its text cut to 512-octet lines), or the 451
  // given in its place.
  Reply reply;
  // For the decision log: the downstream's reply that broke the protocol, which `reply` stands
  // in for; and what went wrong when `reply` is not simply the downstream's answer to this step
  // ("timed out", "protocol violation: 250 in reply to DATA"), else empty.
  std::optional<Reply> violating_reply;
  std::string problem;
  bool encrypted = false;  // the reply came over TLS
};

class Downstream : public std::enable_shared_from_this<Downstream> {
 public:
  using ReplyHandler = std::move_only_function<void(const DownstreamAnswer&)>;

  // `tls` is the client context for STARTTLS (null: downstream.tls = "none", or its CA file did
  // not load, which "required" turns into 451 4.7.5).
  static std::shared_ptr<Downstream> create(uv_loop_t* loop, const DownstreamConfig& config,
                                            std::string helo_name, std::shared_ptr<ClientTls> tls);
  ~Downstream();

  // Sends MAIL first when this is the transaction's first recipient.
  void recipient(const Path& sender, std::optional<uint64_t> size, BodyType body,
                 const Path& recipient, ReplyHandler handler);
  // DATA, then the outgoing message, then the final dot; `handler` gets the reply to
  // the final dot (or to DATA when DATA is refused).
  void message(std::shared_ptr<const OutgoingMessage> message, ReplyHandler handler);
  // Abandons the downstream transaction (RSET), keeping the connection for the next one.
  void reset();
  // QUIT, then close once it is answered (or at once when broken).
  void close();

  // Between client sessions (in a DownstreamPool): closed with QUIT after `idle_timeout`, or
  // dropped when the server closes it first.
  void park(Duration idle_timeout);
  void unpark();
  // Fit for another client session: not broken, not closing, no transaction open.
  bool reusable() const { return !broken() && !closing_ && !in_transaction_ && !streaming_; }
  // Connections are shared only between sessions with the same downstream, EHLO name and TLS
  // policy.
  std::string key() const { return keyFor(config_, helo_name_); }
  static std::string keyFor(const DownstreamConfig& config, const std::string& helo);
  bool encrypted() const { return tls_ && tls_->established(); }

  bool broken() const { return state_ == State::Broken || state_ == State::Closed; }
  bool inTransaction() const { return in_transaction_; }

  // The reply a client hears when the downstream cannot be used (451 4.4.1), or broke the
  // protocol (451 4.4.2: RFC 3463 X.4.2, "bad connection"). TLS that downstream.tls = "required"
  // could not have gets 451 4.7.5.
  static Reply unavailable(std::string_view why);
  static Reply brokeProtocol(std::string_view why);

 private:
  enum class State { Idle, Resolving, Connecting, Connected, Broken, Closed };
  struct Operation {
    SmtpClient::Command command;
    std::move_only_function<void(SmtpClient&)> write;  // queues the command's bytes
    std::move_only_function<void(const DownstreamAnswer&)> on_reply;
  };

  Downstream(uv_loop_t* loop, const DownstreamConfig& config, std::string helo_name, std::shared_ptr<ClientTls> tls);

  void connect();
  void enqueue(Operation operation);
  void pump();
  void flush();
  void write(std::string bytes);
  // After an EHLO reply: STARTTLS when downstream.tls asks for it and the server offers it.
  void afterEhlo();
  void onStartTlsReply(const DownstreamAnswer& answer);
  void onTlsEstablished();
  // TLS could not be had: "required" fails the connection with 451 4.7.5.
  void failTls(std::string why);
  // The name the server's certificate must carry, "" when it is not verified.
  std::string verifyName() const;
  void onConnected(int status);
  void onRead(ssize_t nread, const uv_buf_t* buffer);
  void onReply(SmtpClient::Response response);
  void streamContent();
  void fail(std::string why, std::optional<Reply> reply = std::nullopt);
  // A reply RFC 5321 does not allow in answer to the command it pairs with.
  void violation(const SmtpClient::Response& response);
  // The connection is given up: every step still owed an answer gets `answer`.
  void abandon(const DownstreamAnswer& answer);
  void armTimer(Duration timeout);
  void closeHandles();

  static void allocCallback(uv_handle_t* handle, size_t suggested, uv_buf_t* buffer);
  static void readCallback(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer);
  static void writeCallback(uv_write_t* request, int status);
  static void timerCallback(uv_timer_t* timer);

  uv_loop_t* loop_;
  DownstreamConfig config_;
  std::string helo_name_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_connect_t connect_request_{};
  int open_handles_ = 0;
  std::shared_ptr<Downstream> self_;  // keeps this alive until both handles are closed
  State state_ = State::Idle;
  SmtpClient client_;
  bool parked_ = false;
  Duration idle_timeout_{0};
  bool greeted_ = false;  // the EHLO reply is in: PIPELINING is known
  bool in_transaction_ = false;
  // QUIT is on its way (close()): its 221 closes the connection, so nothing may be queued behind
  // it, or it would never be answered.
  bool closing_ = false;
  std::optional<Reply> mail_refused_;  // MAIL's refusal, given to every RCPT of the transaction
  std::deque<Operation> unsent_;
  std::deque<Operation> in_flight_;
  std::size_t writes_in_flight_ = 0;
  // Content being streamed after the 354.
  std::shared_ptr<const OutgoingMessage> content_;
  uint64_t content_offset_ = 0;
  bool streaming_ = false;
  ReplyHandler message_handler_;
  std::string read_buffer_;
  std::shared_ptr<ClientTls> client_tls_;
  std::optional<TlsStream> tls_;
  bool handshaking_ = false;
};

}  // namespace mailgate
