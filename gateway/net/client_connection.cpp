#include "gateway/net/client_connection.h"

#include <unistd.h>

#include "gateway/net/proxy_protocol.h"
#include "gateway/util/ip_address.h"
#include "gateway/uv/thread_pool.h"
#include "gateway/net/worker.h"
#include "gateway/smtp/replies.h"

namespace mailgate {
namespace {

namespace ev = session_event;

// Bytes a client may have sent ahead (pipelined) while a decision is pending, and replies it may
// leave unread, before the gateway stops reading from it: bounded memory per connection.
constexpr std::size_t max_input_ahead_octets = 256 * 1024;
constexpr std::size_t max_unread_output_octets = 1024 * 1024;
// How long the last replies (221, 421) may take to leave once a connection is closing: a client
// that pipelined much and reads slowly still gets them; one that never reads is cut off.
constexpr Duration close_linger = std::chrono::seconds(10);

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Spelled out for clang 16, which does not deduce an aggregate's arguments (C++20 P1816) yet.
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

ClientConnection::RoutedTarget::RoutedTarget(Worker& worker) : relay_(worker.downstreams()), maildir_(worker.loop()) {}

void ClientConnection::RoutedTarget::recipient(const Runtime& runtime, const Envelope& envelope, const Path& recipient,
                                               RecipientDone done) {
  if (runtime.maildir) maildir_.recipient(runtime, envelope, recipient, std::move(done));
  else relay_.recipient(runtime, envelope, recipient, std::move(done));
}

void ClientConnection::RoutedTarget::message(const Runtime& runtime, std::shared_ptr<const OutgoingMessage> message,
                                             MessageDone done) {
  if (runtime.maildir) maildir_.message(runtime, std::move(message), std::move(done));
  else relay_.message(runtime, std::move(message), std::move(done));
}

void ClientConnection::RoutedTarget::reset() {
  relay_.reset();
  maildir_.reset();
}

void ClientConnection::RoutedTarget::release() {
  relay_.release();
  maildir_.release();
}

void ClientConnection::accept(Worker& worker, int fd, bool implicit_tls) {
  std::shared_ptr<ClientConnection> connection(new ClientConnection(worker, worker.shared().runtime(), implicit_tls));
  connection->self_ = connection;
  if (uv_tcp_open(&connection->tcp_, fd) != 0) {
    ::close(fd);
    connection->closeConnection("accept failed");
    return;
  }
  connection->start();
}

ClientConnection::ClientConnection(Worker& worker, std::shared_ptr<const Runtime> runtime, bool implicit_tls)
    : worker_(worker),
      first_runtime_(std::move(runtime)),
      session_(first_runtime_->sessionSettings()),
      network_(worker.loop()),
      target_(worker),
      server_tls_(worker.shared().tls()),
      implicit_tls_(implicit_tls) {
  uv_tcp_init(worker_.loop(), &tcp_);
  uv_timer_init(worker_.loop(), &idle_timer_);
  uv_timer_init(worker_.loop(), &command_timer_);
  tcp_.data = idle_timer_.data = command_timer_.data = this;
  open_handles_ = 3;
}

ClientConnection::~ClientConnection() = default;

std::shared_ptr<const Runtime> ClientConnection::currentRuntime() { return worker_.shared().runtime(); }
JobRunner& ClientConnection::jobs() { return worker_.jobs(); }
void ClientConnection::record(const nlohmann::json& record) {
  worker_.shared().metrics().observe(record);
  worker_.shared().log().write(record);
}

void ClientConnection::start() {
  PeerAddress peer;
  peerAddress(&tcp_, peer);
  facts_.session = worker_.shared().nextSessionId();
  facts_.client_ip = peer.ip;
  facts_.client_port = peer.port;
  worker_.add(this);
  worker_.shared().metrics().connectionOpened();
  counted_ = true;
  // Nagle plus delayed ACK would hold each reply ~40 ms (issue 2, point 9).
  uv_tcp_nodelay(&tcp_, 1);

  const ServerConfig& server = first_runtime_->config->server;
  if (!server.proxy_protocol) {
    begin({});
    return;
  }
  // Only a trusted proxy may say who the client is; anyone else is cut off before a word.
  bool trusted = false;
  for (const auto& source : server.proxy_sources) trusted = trusted || cidrContains(source, facts_.client_ip);
  if (!trusted) {
    record(connectionRecord(facts_, replies::untrustedProxy(), "PROXY protocol from an address outside server.proxy_sources"));
    closeConnection("untrusted proxy");
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
    record(connectionRecord(facts_, replies::badProxyHeader(), parsed.error()));
    closeConnection("bad PROXY header");
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
  if (!implicit_tls_) {
    beginSession(early_bytes);
    return;
  }
  // RFC 8314 §3.3: TLS from the first byte; the greeting comes once the handshake is done.
  if (!startTls()) return;
  armTimers();
  startReading();
  onCiphertext(early_bytes);
}

bool ClientConnection::startTls() {
  auto stream = server_tls_ ? TlsStream::server(server_tls_->context())
                            : std::unexpected(std::string("no [tls] certificate loaded"));
  if (!stream) {
    record(tlsFailureRecord(facts_, stream.error()));
    closeConnection("TLS unavailable");
    return false;
  }
  tls_.emplace(std::move(*stream));
  return true;
}

void ClientConnection::onCiphertext(std::string_view bytes) {
  auto received = tls_->receive(bytes);
  // Handshake messages and alerts go out even when the handshake failed: the client hears why.
  write(tls_->takeCiphertext());
  if (!received) {
    std::string why = (tls_->established() ? "TLS: " : "TLS handshake failed: ") + received.error();
    // Before the session began (implicit TLS) there is no driver to leave the session record.
    if (!driver_ && !tls_->established()) record(tlsFailureRecord(facts_, received.error()));
    closeConnection(why);
    return;
  }
  if (tls_->takeEstablished()) onTlsEstablished();
  if (closing_) return;
  std::string plaintext = tls_->takePlaintext();
  if (!tls_->established()) return;
  if (implicit_tls_ && !driver_ && !greeted_) {
    // The first application bytes came with the handshake's last flight: they wait for the
    // greeting like any early bytes.
    beginSession(plaintext);
    return;
  }
  session_.receive(plaintext);
  drive();
}

void ClientConnection::onTlsEstablished() {
  TlsFacts agreed = tls_->facts();
  SessionTls tls{agreed.version, agreed.cipher, agreed.sni};
  facts_.tls = tls;
  session_.tlsStarted();
  if (driver_) driver_->tlsStarted(std::move(tls));
}

void ClientConnection::beginSession(std::string_view early_bytes) {
  const ServerConfig& server = first_runtime_->config->server;
  // Bytes sent before the greeting wait in the session until it is sent.
  session_.receive(early_bytes);
  auto verdict = worker_.shared().limiter().acquire(facts_.client_ip, server.max_connections,
                                                    server.max_connections_per_client);
  if (verdict != ConnectionLimiter::Verdict::Accepted) {
    bool total = verdict == ConnectionLimiter::Verdict::TooManyTotal;
    const Reply& reply = total ? replies::tooManyConnections() : replies::tooManyConnectionsFromClient();
    record(connectionRecord(facts_, reply, total ? "max_connections" : "max_connections_per_client"));
    greeted_ = true;
    session_.greet(reply);
    drive();
    return;
  }
  limited_ = true;
  if (worker_.draining()) {
    greeted_ = true;
    session_.greet(replies::shuttingDown());
    drive();
    return;
  }
  driver_.emplace(static_cast<DriverHost&>(*this), facts_);
  std::weak_ptr<ClientConnection> weak = shared_from_this();
  driver_->connect([weak](std::optional<Reply> refusal) {
    auto self = weak.lock();
    if (!self || self->closing_) return;
    self->greeted_ = true;
    if (refusal) self->session_.greet(*refusal);
    else self->session_.greet();
    self->drive();
  });
}

TransactionDriver::Answer ClientConnection::answerLater() {
  std::weak_ptr<ClientConnection> weak = shared_from_this();
  return [weak](std::optional<Reply> reply) {
    auto self = weak.lock();
    if (!self || self->closing_) return;
    self->answer(std::move(reply));
  };
}

void ClientConnection::answer(std::optional<Reply> reply) {
  awaiting_ = false;
  if (reply) session_.answer(*reply);
  else session_.accept();
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
      closeConnection("session closed");
      break;
    }
    handle(event);
  }
  driving_ = false;
}

void ClientConnection::handle(SessionEvent& event) {
  // A session refused before the driver existed (limits, shutting down) has only its 421.
  if (!driver_) return;
  TransactionDriver& driver = *driver_;
  std::visit(Overloaded{
                 [](ev::NeedInput&) {}, [](ev::AwaitingAnswer&) {}, [](ev::Closed&) {},
                 [&](ev::Helo& helo) {
                   // Shutting down: no new transaction starts (the current one was let finish).
                   if (draining_) return session_.close(replies::shuttingDown());
                   driver.helo(std::move(helo.name), helo.extended, answerLater());
                 },
                 [&](ev::Mail& mail) {
                   if (draining_) return session_.close(replies::shuttingDown());
                   driver.mail(mail.command, answerLater());
                   // The transaction runs under the snapshot it started with: its limits too.
                   if (driver_) session_.setSettings(driver.runtime().sessionSettings());
                 },
                 [&](ev::Rcpt& rcpt) { driver.rcpt(rcpt.command, answerLater()); },
                 [&](ev::DataChunk& chunk) { driver.messageBytes(chunk.bytes); },
                 [&](ev::EndOfData& end) { driver.endOfData(end.size, answerLater()); },
                 [&](ev::DataRefused& refused) { driver.dataRefused(refused.reply, refused.reason, refused.size); },
                 [&](ev::Reset&) { driver.reset(); },
                 [&](ev::Refused& refused) { driver.commandRefused(refused.verb, refused.argument, refused.reply); },
                 [&](ev::Quit&) { driver.end("quit"); },
                 [&](ev::StartTls&) {
                   // The 220 leaves in the clear; every byte after it is TLS.
                   flush();
                   startTls();
                 },
             },
             event);
}

void ClientConnection::drain() {
  draining_ = true;
  bool in_transaction = driver_ && driver_->inTransaction();
  if (!in_transaction && !session_.inTransaction() && !driving_ && !awaiting_) {
    session_.close(replies::shuttingDown());
    drive();
  }
}

void ClientConnection::shutdown() {
  if (closing_) return;
  if (driver_) driver_->end("shutdown");
  session_.close(replies::shuttingDown());
  flush();
  closeConnection("shutdown");
}

void ClientConnection::flush() {
  if (!session_.hasOutput() || closing_) return;
  std::string bytes = session_.takeOutput();
  worker_.shared().metrics().repliesWritten(bytes);
  if (tls_) {
    if (auto sent = tls_->send(bytes); !sent) {
      closeConnection("TLS: " + sent.error());
      return;
    }
    bytes = tls_->takeCiphertext();
  }
  write(std::move(bytes));
}

void ClientConnection::write(std::string bytes) {
  if (bytes.empty() || handles_closing_) return;
  auto request = std::make_unique<WriteRequest>();
  request->bytes = std::move(bytes);
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
                            self->closeConnection("session closed");
                          } else if (!self->reading_ && !self->closing_ && !self->awaiting_) {
                            self->drive();  // output drained: reading may resume
                          }
                        });
  if (status != 0) {
    closeConnection("client connection error");
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
    closeConnection(nread == UV_EOF ? "client disconnected" : "client connection error");
    return;
  }
  std::string_view bytes(buffer->base, static_cast<std::size_t>(nread));
  if (awaiting_proxy_) {
    onProxyBytes(bytes);
    return;
  }
  if (tls_) {
    onCiphertext(bytes);
    return;
  }
  session_.receive(bytes);
  drive();
}

void ClientConnection::armTimers() {
  const ServerConfig& server = first_runtime_->config->server;
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
  Reply reply = replies::timeout(first_runtime_->config->server.hostname);
  if (driver_) driver_->end(which);
  record(connectionRecord(facts_, reply, which));
  if (!greeted_) {  // still waiting for the PROXY header (or the connect stages): no SMTP reply yet
    closeConnection(which);
    return;
  }
  session_.close(reply);
  drive();
}

void ClientConnection::closeConnection(std::string_view why) {
  if (!closing_) {
    if (tls_ && !handles_closing_) {
      tls_->shutdown();
      write(tls_->takeCiphertext());
    }
    closing_ = true;
    if (driver_) driver_->end(why);
    network_.closeAll();
    stopReading();
    uv_timer_stop(&idle_timer_);
    uv_timer_stop(&command_timer_);
    if (limited_) worker_.shared().limiter().release(facts_.client_ip);
    limited_ = false;
    worker_.remove(this);
    if (std::exchange(counted_, false)) worker_.shared().metrics().connectionClosed();
  }
  // The last replies (221, 421) go out before the socket closes, but a client that never reads
  // must not keep the connection forever: after close_linger it is closed anyway (uv_close
  // cancels the writes).
  if (handles_closing_) return;
  if (writes_in_flight_ > 0 && !linger_expired_) {
    uv_timer_start(&idle_timer_, [](uv_timer_t* timer) {
      auto* self = static_cast<ClientConnection*>(timer->data);
      self->linger_expired_ = true;
      self->closeConnection("close linger expired");
    }, static_cast<uint64_t>(close_linger.count()), 0);
    return;
  }
  handles_closing_ = true;
  auto on_close = [](uv_handle_t* handle) {
    auto* self = static_cast<ClientConnection*>(handle->data);
    if (--self->open_handles_ == 0) self->self_.reset();
  };
  closeHandle(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_timer_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&command_timer_), on_close);
}

}  // namespace mailgate
