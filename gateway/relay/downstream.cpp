#include "gateway/relay/downstream.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "gateway/uv/uv_util.h"
#include "gateway/smtp/replies.h"

namespace mailgate {
namespace {

using Command = SmtpClient::Command;

// Content is read from the spool and written in pieces of this size, with at most two pieces in
// flight, so a 50 MiB message costs about 1 MiB while it goes out.
constexpr std::size_t content_piece_octets = 256 * 1024;
constexpr std::size_t content_pieces_in_flight = 2;
constexpr std::size_t read_buffer_octets = 16 * 1024;

struct Resolve {
  uv_getaddrinfo_t request;
  std::shared_ptr<Downstream> owner;
};

// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets, and the README promises it for every
// line the gateway sends. SmtpClient reads longer ones (up to its own bound) from a downstream
// that ignores the limit; relayed, their text is cut to fit. Cutting keeps what matters: the code
// and enhanced code are the downstream's decision (a 250 after delivery replaced by a 4xx would
// make the client send the message again; a 550 user unknown must stay a 5xx), and only the
// human-readable text is lost.
Reply withinLineBound(const Reply& reply) {
  std::size_t overhead = 4 + (reply.enhanced().empty() ? 0 : reply.enhanced().size() + 1) + 2;  // "250 " ... CRLF
  std::size_t room = Reply::max_line_octets - overhead;
  bool fits = true;
  for (const auto& line : reply.lines()) fits = fits && line.size() <= room;
  if (fits) return reply;
  std::vector<std::string> lines;
  for (const auto& line : reply.lines()) {
    std::size_t cut = std::min(line.size(), room);
    // Never in the middle of a UTF-8 sequence (continuation octets are 10xxxxxx).
    while (cut < line.size() && cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xc0) == 0x80) --cut;
    std::string text = line.substr(0, cut);
    lines.push_back(reply.enhanced().empty() ? text : reply.enhanced() + (text.empty() ? "" : " ") + text);
  }
  return Reply::received(reply.code(), std::move(lines));
}

}  // namespace

Reply Downstream::unavailable(std::string_view why) { return replies::downstreamUnavailable(why); }

Reply Downstream::brokeProtocol(std::string_view why) { return replies::downstreamBrokeProtocol(why); }

std::string Downstream::keyFor(const DownstreamConfig& config, const std::string& helo) {
  static constexpr const char* policies[] = {"none", "opportunistic", "required"};
  return config.address->text() + " " + helo + " tls=" + policies[static_cast<int>(config.tls)] + " " +
         config.tls_name + " " + config.tls_ca_file;
}

std::shared_ptr<Downstream> Downstream::create(uv_loop_t* loop, const DownstreamConfig& config,
                                               std::string helo_name, std::shared_ptr<ClientTls> tls) {
  std::shared_ptr<Downstream> downstream(new Downstream(loop, config, std::move(helo_name), std::move(tls)));
  downstream->self_ = downstream;
  return downstream;
}

Downstream::Downstream(uv_loop_t* loop, const DownstreamConfig& config, std::string helo_name,
                       std::shared_ptr<ClientTls> tls)
    : loop_(loop), config_(config), helo_name_(std::move(helo_name)), client_tls_(std::move(tls)) {
  uv_tcp_init(loop_, &tcp_);
  uv_timer_init(loop_, &timer_);
  tcp_.data = this;
  timer_.data = this;
  open_handles_ = 2;
}

Downstream::~Downstream() = default;

void Downstream::recipient(const Path& sender, std::optional<uint64_t> size, BodyType body,
                           const Path& recipient, ReplyHandler handler) {
  if (broken() || closing_) {
    std::string why = broken() ? "connection lost" : "connection closing";
    handler({unavailable(why), std::nullopt, why});
    return;
  }
  if (state_ == State::Idle) {
    connect();
    if (broken()) {  // the connect failed at once (no route, no descriptors)
      handler({unavailable("connect failed"), std::nullopt, "connect failed"});
      return;
    }
  }
  if (!in_transaction_) {
    in_transaction_ = true;
    mail_refused_.reset();
    enqueue({Command::Mail, [sender, size, body](SmtpClient& client) { client.mail(sender, size, body); },
             [this](const DownstreamAnswer& answer) {
               if (answer.reply.code() != 250) mail_refused_ = answer.reply;
             }});
  }
  enqueue({Command::Rcpt, [recipient](SmtpClient& client) { client.rcpt(recipient); },
           [this, handler = std::move(handler)](const DownstreamAnswer& answer) mutable {
             // A refused MAIL refuses each recipient with the downstream's own words.
             if (mail_refused_ && answer.reply.code() != 451) handler({*mail_refused_, std::nullopt, {}});
             else handler(answer);
           }});
  pump();
}

void Downstream::message(std::shared_ptr<const OutgoingMessage> content, ReplyHandler handler) {
  if (broken() || !in_transaction_) {
    std::string why = broken() ? "connection lost" : "no transaction";
    handler({unavailable(why), std::nullopt, why});
    return;
  }
  message_handler_ = std::move(handler);
  enqueue({Command::Data, [](SmtpClient& client) { client.data(); },
           [this, content = std::move(content)](const DownstreamAnswer& answer) mutable {
             if (broken()) return;  // fail() already answered message_handler_
             // The transaction was abandoned while DATA was on its way: never send the message.
             if (!in_transaction_) {
               fail("transaction abandoned");
               return;
             }
             // Anything but 354 here is a 4xx or 5xx refusal (onReply turned any other reply
             // into a protocol violation): RSET first (the downstream still holds MAIL and RCPT),
             // then the handler, which may start the next transaction at once.
             if (answer.reply.code() != 354) {
               auto handler = std::move(message_handler_);
               reset();
               handler(answer);
               return;
             }
             content_ = std::move(content);
             content_offset_ = 0;
             streaming_ = true;
             streamContent();
           }});
  pump();
}

void Downstream::reset() {
  if (broken() || !in_transaction_) {
    in_transaction_ = false;
    return;
  }
  // A message on its way must not reach its final dot once the client is gone: the client will
  // send it again, and it would be delivered twice. Dropping the connection is the only way.
  if (streaming_) {
    fail("transaction abandoned while the message was sent");
    return;
  }
  in_transaction_ = false;
  enqueue({Command::Rset, [](SmtpClient& client) { client.rset(); }, [](const DownstreamAnswer&) {}});
  pump();
}

void Downstream::close() {
  if (state_ == State::Closed || closing_) return;
  if (state_ != State::Connected) {
    fail("closed");
    return;
  }
  in_transaction_ = false;
  closing_ = true;
  enqueue({Command::Quit, [](SmtpClient& client) { client.quit(); },
           [this](const DownstreamAnswer&) { closeHandles(); }});
  pump();
}

void Downstream::park(Duration idle_timeout) {
  parked_ = true;
  idle_timeout_ = idle_timeout;
  if (in_flight_.empty() && unsent_.empty()) armTimer(idle_timeout);
}

void Downstream::unpark() {
  parked_ = false;
  if (in_flight_.empty() && unsent_.empty()) uv_timer_stop(&timer_);
}

void Downstream::connect() {
  state_ = State::Connecting;
  armTimer(config_.connect_timeout);
  enqueue({Command::Greeting, [](SmtpClient& client) { client.expectGreeting(); },
           [this](const DownstreamAnswer& answer) {
             if (answer.reply.code() != 220) fail("greeting " + answer.reply.summary(), answer.reply);
           }});
  enqueue({Command::Ehlo, [this](SmtpClient& client) { client.ehlo(helo_name_); },
           [this](const DownstreamAnswer& answer) {
             if (answer.reply.code() != 250) {
               fail("EHLO refused: " + answer.reply.summary(), answer.reply);
               return;
             }
             afterEhlo();
           }});
  const HostPort& address = *config_.address;
  sockaddr_storage socket_address{};
  if (socketAddress(address.host, address.port, socket_address)) {
    int status = uv_tcp_connect(&connect_request_, &tcp_, reinterpret_cast<const sockaddr*>(&socket_address),
                                [](uv_connect_t* request, int status) {
                                  static_cast<Downstream*>(request->handle->data)->onConnected(status);
                                });
    if (status != 0) fail(std::string("connect: ") + uv_strerror(status));
    return;
  }
  state_ = State::Resolving;
  auto resolve = std::make_unique<Resolve>();
  resolve->owner = shared_from_this();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(address.port);
  int status = uv_getaddrinfo(
      loop_, &resolve->request,
      [](uv_getaddrinfo_t* request, int status, addrinfo* result) {
        std::unique_ptr<Resolve> resolve(static_cast<Resolve*>(request->data));
        Downstream& self = *resolve->owner;
        if (self.state_ != State::Resolving) {
          uv_freeaddrinfo(result);
          return;
        }
        if (status != 0 || result == nullptr) {
          uv_freeaddrinfo(result);
          self.fail(std::string("resolve: ") + uv_strerror(status));
          return;
        }
        self.state_ = State::Connecting;
        int connect_status = uv_tcp_connect(&self.connect_request_, &self.tcp_, result->ai_addr,
                                            [](uv_connect_t* connect, int connected) {
                                              static_cast<Downstream*>(connect->handle->data)->onConnected(connected);
                                            });
        uv_freeaddrinfo(result);
        if (connect_status != 0) self.fail(std::string("connect: ") + uv_strerror(connect_status));
      },
      address.host.c_str(), port.c_str(), &hints);
  if (status != 0) {
    fail(std::string("resolve: ") + uv_strerror(status));
    return;
  }
  resolve->request.data = resolve.get();
  resolve.release();  // owned by the callback from here
}

void Downstream::onConnected(int status) {
  if (state_ != State::Connecting) return;
  if (status != 0) {
    fail(std::string("connect: ") + uv_strerror(status));
    return;
  }
  state_ = State::Connected;
  // Nagle plus delayed ACK would add ~40 ms to every pipelined group (issue 2, point 9).
  uv_tcp_nodelay(&tcp_, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), allocCallback, readCallback);
  pump();
}

void Downstream::afterEhlo() {
  if (tls_ || config_.tls == DownstreamTls::None) {
    greeted_ = true;
    return;
  }
  bool required = config_.tls == DownstreamTls::Required;
  if (!client_tls_ || !client_tls_->context()) {
    if (required) return failTls("no TLS client context (downstream.tls_ca_file did not load)");
    greeted_ = true;
    return;
  }
  if (!client_.startTlsOffered()) {
    // Opportunistic TLS (RFC 3207 §4 leaves it to policy): in the clear when not offered.
    if (required) return failTls("the server does not offer STARTTLS");
    greeted_ = true;
    return;
  }
  if (!required && ClientTls::inTheClear(key(), std::chrono::steady_clock::now())) {
    greeted_ = true;  // a handshake with it failed lately (failTls)
    return;
  }
  // Before anything queued behind it (MAIL, RCPT): greeted_ stays false, so nothing is pipelined
  // with STARTTLS (RFC 3207 §4.2: it must be the last command of a group).
  unsent_.push_front({Command::StartTls, [](SmtpClient& client) { client.startTls(); },
                      [this](const DownstreamAnswer& answer) { onStartTlsReply(answer); }});
}

std::string Downstream::verifyName() const {
  if (!config_.tls_name.empty()) return config_.tls_name;
  return config_.tls == DownstreamTls::Required ? config_.address->host : std::string();
}

void Downstream::onStartTlsReply(const DownstreamAnswer& answer) {
  if (answer.reply.code() != 220) {
    if (config_.tls == DownstreamTls::Required) return failTls("STARTTLS refused: " + answer.reply.summary());
    greeted_ = true;  // opportunistic: on in the clear
    return;
  }
  std::string name = verifyName();
  // SNI only for a name (RFC 6066 §3: literal IP addresses are not permitted).
  sockaddr_storage unused{};
  std::string sni = !name.empty() && !socketAddress(name, 0, unused) ? name : std::string();
  if (sni.empty() && !socketAddress(config_.address->host, 0, unused)) sni = config_.address->host;
  auto stream = TlsStream::client(client_tls_->context(), sni, name, client_tls_->session(key()));
  if (!stream) return failTls(stream.error());
  tls_.emplace(std::move(*stream));
  handshaking_ = true;
  if (auto started = tls_->start(); !started) return failTls(started.error());
  write(tls_->takeCiphertext());
  armTimer(config_.timeout);
}

void Downstream::onTlsEstablished() {
  handshaking_ = false;
  client_.tlsStarted();
  // RFC 3207 §4.2: EHLO again; the extensions offered in the clear no longer count.
  unsent_.push_front({Command::Ehlo, [this](SmtpClient& client) { client.ehlo(helo_name_); },
                      [this](const DownstreamAnswer& answer) {
                        if (answer.reply.code() != 250) {
                          fail("EHLO after STARTTLS refused: " + answer.reply.summary(), answer.reply);
                          return;
                        }
                        greeted_ = true;
                        // TLS 1.3 tickets come after the handshake; by this reply they are in.
                        if (client_tls_) client_tls_->remember(key(), tls_->session());
                      }});
  pump();
}

void Downstream::failTls(std::string why) {
  if (config_.tls != DownstreamTls::Required) {
    // This transaction is lost on this connection (the client hears 4xx and tries again); the
    // next ones go in the clear rather than fail the same way for every message.
    if (handshaking_) {
      ClientTls::handshakeFailed(key(), std::chrono::steady_clock::now());
      why += "; the next connections to this server go in the clear for " +
             std::to_string(std::chrono::duration_cast<std::chrono::minutes>(ClientTls::clear_for).count()) +
             " minutes (downstream.tls = opportunistic)";
    }
    fail("TLS: " + why);
    return;
  }
  abandon({replies::downstreamTlsUnavailable(why), std::nullopt, "TLS required: " + why});
}

void Downstream::enqueue(Operation operation) { unsent_.push_back(std::move(operation)); }

void Downstream::pump() {
  if (state_ != State::Connected || handshaking_) return;
  while (!unsent_.empty() && !streaming_) {
    bool pipelining = greeted_ && client_.pipelining();
    if (!in_flight_.empty() && !pipelining) break;
    // RFC 2920 §3.1: DATA ends a pipelined group; nothing may follow until its 354.
    if (!in_flight_.empty() && in_flight_.back().command == Command::Data) break;
    Operation operation = std::move(unsent_.front());
    unsent_.pop_front();
    operation.write(client_);
    in_flight_.push_back(std::move(operation));
  }
  flush();
  if (!in_flight_.empty() || streaming_) armTimer(config_.timeout);
  else if (parked_) armTimer(idle_timeout_);
  else uv_timer_stop(&timer_);
}

void Downstream::flush() {
  if (!client_.hasOutput() || state_ != State::Connected) return;
  std::string bytes = client_.takeOutput();
  if (tls_) {
    if (auto sent = tls_->send(bytes); !sent) {
      failTls(sent.error());
      return;
    }
    bytes = tls_->takeCiphertext();
  }
  write(std::move(bytes));
}

void Downstream::write(std::string bytes) {
  if (bytes.empty() || state_ != State::Connected) return;
  auto request = std::make_unique<WriteRequest>();
  request->bytes = std::move(bytes);
  // A message's pieces go through uv_write, paced by its callbacks, so that a large message to
  // a fast downstream does not hold the loop; commands and a small message's end leave at once.
  if (!streaming_) {
    writeAtOnce(reinterpret_cast<uv_stream_t*>(&tcp_), request->bytes);
    if (request->bytes.empty()) return;
  }
  request->request.data = request.get();
  request->owner = this;
  uv_buf_t buffer = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
  int status = uv_write(&request->request, reinterpret_cast<uv_stream_t*>(&tcp_), &buffer, 1, writeCallback);
  if (status != 0) {
    fail(std::string("write: ") + uv_strerror(status));
    return;
  }
  request.release();  // freed in writeCallback
  ++writes_in_flight_;
}

void Downstream::streamContent() {
  if (!streaming_) return;
  while (writes_in_flight_ < content_pieces_in_flight && content_offset_ < content_->size()) {
    if (content_->contiguous()) {
      client_.content(content_->addedHeaders());
      client_.content(content_->memoryContent());
      content_offset_ = content_->size();
    } else {
      std::string piece(content_piece_octets, '\0');
      auto count = content_->read(content_offset_, piece.data(), piece.size());
      if (!count || *count == 0) {
        fail("spool read: " + (count ? std::string("short read") : count.error()));
        return;
      }
      piece.resize(*count);
      client_.content(piece);
      content_offset_ += *count;
    }
    // The last piece waits for the final dot, so a small message leaves in one write.
    if (content_offset_ < content_->size()) flush();
    if (broken()) return;
  }
  if (content_offset_ < content_->size()) {
    armTimer(config_.timeout);
    return;
  }
  streaming_ = false;
  content_.reset();
  client_.endOfData();
  in_flight_.push_back({Command::EndOfData, [](SmtpClient&) {}, [this](const DownstreamAnswer& answer) {
                          in_transaction_ = false;
                          auto handler = std::move(message_handler_);
                          if (handler) handler(answer);
                        }});
  pump();
}

void Downstream::onRead(ssize_t nread, const uv_buf_t* buffer) {
  if (nread < 0) {
    fail(nread == UV_EOF ? "connection closed by downstream" : std::string("read: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  std::string_view bytes(buffer->base, static_cast<std::size_t>(nread));
  std::string plaintext;
  if (tls_) {
    auto received = tls_->receive(bytes);
    write(tls_->takeCiphertext());
    if (!received) {
      failTls(received.error());
      return;
    }
    plaintext = tls_->takePlaintext();
    bytes = plaintext;
    if (tls_->takeEstablished()) {
      onTlsEstablished();
      if (broken()) return;
    }
  }
  client_.receive(bytes);
  while (!broken()) {
    auto response = client_.next();
    if (!response) break;
    onReply(std::move(*response));
  }
  if (!broken() && client_.failed()) {
    std::string why = "protocol violation: " + client_.failure();
    abandon({brokeProtocol(client_.failure()), std::nullopt, why});
  }
}

void Downstream::onReply(SmtpClient::Response response) {
  if (in_flight_.empty()) {  // SmtpClient pairs replies with commands: a safeguard only
    abandon({brokeProtocol("unexpected reply"), withinLineBound(response.reply), "protocol violation: unexpected reply"});
    return;
  }
  Operation operation = std::move(in_flight_.front());
  in_flight_.pop_front();
  // 421: the downstream is closing (RFC 5321 §3.8); the command it answered failed with it.
  if (response.reply.code() == 421) {
    in_flight_.push_front(std::move(operation));
    fail("downstream said " + response.reply.summary());
    return;
  }
  if (!response.permitted) {
    in_flight_.push_front(std::move(operation));
    violation(response);
    return;
  }
  operation.on_reply({withinLineBound(response.reply), std::nullopt, {}, encrypted()});
  if (!broken()) pump();
}

void Downstream::fail(std::string why, std::optional<Reply> reply) {
  // The downstream's own 4xx is relayed; anything else becomes 451 4.4.1 (a 5xx from a broken
  // exchange must not make the client bounce the message).
  bool own = reply && reply->transient() && reply->code() != 421;
  abandon({own ? withinLineBound(*reply) : unavailable(why), std::nullopt, std::move(why)});
}

void Downstream::violation(const SmtpClient::Response& response) {
  // The reply is not what its code says (a 250 to DATA is no delivery, a 354 to RCPT no
  // recipient), and the exchange is out of step: the connection is dropped, before any message
  // content is sent, and the client hears a 4xx so that it tries again later.
  std::string what = std::to_string(response.reply.code()) + " in reply to " + std::string(SmtpClient::name(response.command));
  abandon({brokeProtocol(what), withinLineBound(response.reply), "protocol violation: " + what});
}

void Downstream::abandon(const DownstreamAnswer& answer) {
  if (broken()) return;
  auto keep_alive = self_;
  state_ = State::Broken;
  std::deque<Operation> pending;
  pending.swap(in_flight_);
  for (auto& operation : unsent_) pending.push_back(std::move(operation));
  unsent_.clear();
  streaming_ = false;
  content_.reset();
  closeHandles();
  for (auto& operation : pending) {
    if (operation.command == Command::Data || operation.command == Command::EndOfData) continue;
    operation.on_reply(answer);
  }
  if (message_handler_) {
    auto handler = std::move(message_handler_);
    handler(answer);
  }
}

void Downstream::armTimer(Duration timeout) {
  uv_timer_start(&timer_, timerCallback, static_cast<uint64_t>(timeout.count()), 0);
}

void Downstream::closeHandles() {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  auto on_close = [](uv_handle_t* handle) {
    auto* self = static_cast<Downstream*>(handle->data);
    if (--self->open_handles_ == 0) self->self_.reset();
  };
  closeHandle(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
}

void Downstream::allocCallback(uv_handle_t* handle, size_t, uv_buf_t* buffer) {
  auto* self = static_cast<Downstream*>(handle->data);
  self->read_buffer_.resize(read_buffer_octets);
  *buffer = uv_buf_init(self->read_buffer_.data(), static_cast<unsigned>(self->read_buffer_.size()));
}

void Downstream::readCallback(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer) {
  auto* self = static_cast<Downstream*>(stream->data);
  if (nread == 0) return;
  auto keep_alive = self->self_;
  self->onRead(nread, buffer);
}

void Downstream::writeCallback(uv_write_t* request, int status) {
  std::unique_ptr<WriteRequest> owned(static_cast<WriteRequest*>(request->data));
  auto* self = static_cast<Downstream*>(owned->owner);
  auto keep_alive = self->self_;
  --self->writes_in_flight_;
  if (status != 0) {
    self->fail(std::string("write: ") + uv_strerror(status));
    return;
  }
  if (self->streaming_) {
    self->armTimer(self->config_.timeout);
    self->streamContent();
  }
}

void Downstream::timerCallback(uv_timer_t* timer) {
  auto* self = static_cast<Downstream*>(timer->data);
  auto keep_alive = self->self_;
  if (self->parked_ && self->in_flight_.empty() && self->unsent_.empty()) {
    self->close();  // idle long enough: a polite QUIT
    return;
  }
  self->fail(self->state_ == State::Connected ? "timed out" : "connect timed out");
}

}  // namespace mailgate
