#pragma once
// One client's SMTP connection: the socket, its timers and back-pressure, and TLS when the client
// starts it (STARTTLS) or the listener speaks it from the first byte (implicit TLS): then every
// byte passes through a TlsStream. Bytes go to the SmtpSession (the dialogue), the session's
// events to the TransactionDriver (the decisions, delivery and records); this class only moves
// bytes and keeps time. It lives on one worker's
// loop and owns itself until its handles are closed, so late callbacks find it through weak_ptr.

#include <uv.h>

#include <memory>
#include <optional>
#include <string>

#include "gateway/net/maildir_target.h"
#include "gateway/net/shared_state.h"
#include "gateway/uv/uv_network.h"
#include "gateway/uv/uv_util.h"
#include "gateway/relay/relay_target.h"
#include "gateway/smtp/smtp_session.h"
#include "gateway/tls/server_tls.h"
#include "gateway/tls/tls_stream.h"
#include "gateway/transaction/transaction_driver.h"

namespace mailgate {

class Worker;

class ClientConnection : public std::enable_shared_from_this<ClientConnection>, private DriverHost {
 public:
  // Takes `fd`, a client socket just accepted (non-blocking), and serves it.
  static void accept(Worker& worker, int fd, bool implicit_tls);
  ~ClientConnection() override;

  // Shutting down: close now with 421 4.3.2 if idle, else after the transaction in flight.
  void drain();
  // Close now with 421 4.3.2 (the drain bound passed).
  void shutdown();

 private:
  // Delivery under the transaction's snapshot: the relay when a downstream is configured, else
  // the Maildir (a reload may switch between them; reset and release go to both).
  class RoutedTarget final : public DeliveryTarget {
   public:
    RoutedTarget(Worker& worker);
    void recipient(const Runtime& runtime, const Envelope& envelope, const Path& recipient, RecipientDone done) override;
    void message(const Runtime& runtime, std::shared_ptr<const OutgoingMessage> message, MessageDone done) override;
    void reset() override;
    void release() override;

   private:
    RelayTarget relay_;
    MaildirTarget maildir_;
  };

  ClientConnection(Worker& worker, std::shared_ptr<const Runtime> runtime, bool implicit_tls);
  void start();
  void onProxyBytes(std::string_view bytes);
  // After the PROXY header (if any): TLS first on an implicit-TLS listener, then the session.
  void begin(std::string_view early_bytes);
  void beginSession(std::string_view early_bytes);
  // The handshake starts (after the 220 to STARTTLS, or at once with implicit TLS).
  bool startTls();
  void onCiphertext(std::string_view bytes);
  void onTlsEstablished();
  // Writes bytes as they are on the wire (ciphertext once TLS is on).
  void write(std::string bytes);
  void drive();
  void handle(SessionEvent& event);
  // The driver's answer to the pending command, then on with the session.
  void answer(std::optional<Reply> reply);
  // An answer callback for the driver that finds this connection only while it is open.
  TransactionDriver::Answer answerLater();

  // DriverHost
  std::shared_ptr<const Runtime> currentRuntime() override;
  JobRunner& jobs() override;
  NetworkAccess* network() override { return &network_; }
  DeliveryTarget& deliveryTarget() override { return target_; }
  void record(const nlohmann::json& record) override;

  void flush();
  void startReading();
  void stopReading();
  void armTimers();
  void onTimeout(const char* which);
  void closeConnection(std::string_view why);
  void onRead(ssize_t nread, const uv_buf_t* buffer);

  Worker& worker_;
  uv_tcp_t tcp_{};
  uv_timer_t idle_timer_{};
  uv_timer_t command_timer_{};
  int open_handles_ = 0;
  std::shared_ptr<ClientConnection> self_;
  std::shared_ptr<const Runtime> first_runtime_;  // the snapshot current when the client connected
  SmtpSession session_;
  SessionFacts facts_;
  UvNetwork network_;
  RoutedTarget target_;
  std::optional<TransactionDriver> driver_;  // made once the client's address is known
  std::shared_ptr<const ServerTls> server_tls_;  // the certificates current when the client connected
  std::optional<TlsStream> tls_;
  bool implicit_tls_ = false;
  bool limited_ = false;  // counted in the connection limiter
  bool counted_ = false;  // counted in the metrics' open connections
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
