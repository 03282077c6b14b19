#pragma once
// One TLS connection as a sans-I/O state machine: OpenSSL over two memory BIOs. The host feeds it
// the bytes read from the socket (ciphertext) and writes out what it produces, so handshakes and
// records of thousands of connections share an event loop and none of them ever blocks it.
// Used for both legs: the client's (server side, STARTTLS or implicit TLS) and the downstream's
// (client side, STARTTLS).

#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/tls/openssl_handles.h"

namespace mailgate {

// What a finished handshake agreed on, for the Received: header and the decision record.
struct TlsFacts {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
  std::string sni;      // the name the client asked for (server side), "" when none
  bool resumed = false;
};

class TlsStream {
 public:
  // The server side of a connection; SNI and certificate choice are the context's callbacks.
  static std::expected<TlsStream, std::string> server(SSL_CTX* context);
  // The client side: `sni` is sent as server name; when `verify_name` is not empty the peer's
  // certificate must be valid for it (and chain to the context's trust anchors); `resume` is a
  // session from an earlier connection to the same server, or null.
  static std::expected<TlsStream, std::string> client(SSL_CTX* context, const std::string& sni,
                                                      const std::string& verify_name, SSL_SESSION* resume);

  // Ciphertext from the peer. Drives the handshake and decrypts what it can; an error is the
  // end of this connection (handshake failed, bad record, the peer's alert).
  std::expected<void, std::string> receive(std::string_view ciphertext);
  // Starts the client's handshake (its ClientHello goes to the output).
  std::expected<void, std::string> start();
  // Application bytes to encrypt. Before the handshake is done they wait, and go out after it.
  std::expected<void, std::string> send(std::string_view plaintext);

  // Sends close_notify (RFC 8446 §6.1), so the peer knows the data ended here and was not cut.
  void shutdown();

  // Decrypted application bytes received so far.
  std::string takePlaintext();
  // Ciphertext to write to the socket (handshake messages, records, alerts).
  std::string takeCiphertext();
  bool hasCiphertext() const;

  bool established() const { return established_; }
  // True once, right after the handshake finished (the host then resets the SMTP session).
  bool takeEstablished();
  TlsFacts facts() const;
  // The session to resume the next connection with (client side), once established.
  SslSession session() const;

 private:
  explicit TlsStream(SslConnection ssl);
  std::expected<void, std::string> pump();

  SslConnection ssl_;
  BIO* network_in_ = nullptr;   // owned by ssl_
  BIO* network_out_ = nullptr;  // owned by ssl_
  std::string plaintext_;
  std::string unsent_;  // application bytes given before the handshake finished
  bool established_ = false;
  bool newly_established_ = false;
  bool failed_ = false;
};

}  // namespace mailgate
