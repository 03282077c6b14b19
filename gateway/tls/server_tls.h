#pragma once
// The gateway's TLS server contexts, built from [tls]: the main certificate/key pair and the
// further [[tls.certificates]] pairs. Pairs without `names` share the default context (an RSA and
// an ECDSA pair side by side: OpenSSL picks the one the client supports); pairs with `names` get
// a context each, chosen by the name the client sends (SNI, RFC 6066 §3). Immutable once built; a
// reload (SIGHUP) builds a new one and connections in flight keep the one they started with.

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/tls/openssl_handles.h"

namespace mailgate {

class ServerTls {
 public:
  // Every certificate and key is read, matched and checked for expiry; the error names the file.
  static std::expected<std::shared_ptr<const ServerTls>, std::string> load(const TlsConfig& config);

  SSL_CTX* context() const { return default_.get(); }
  // The context serving `name` (exact, or "*.example.org" for one label), or null.
  SSL_CTX* contextFor(std::string_view name) const;

 private:
  ServerTls() = default;
  struct Named {
    std::string name;  // lower case; "*.example.org" for a wildcard
    SSL_CTX* context;
  };
  SslContext default_;
  std::vector<SslContext> named_contexts_;
  std::vector<Named> names_;
};

// The downstream's TLS client context: trust anchors from `ca_file` (or the system's), and the
// sessions of earlier connections to resume (RFC 8446 §2.2), one per downstream server. One per
// worker: used on its loop only.
class ClientTls {
 public:
  static std::expected<std::shared_ptr<ClientTls>, std::string> make(const std::string& ca_file);

  SSL_CTX* context() const { return context_.get(); }
  const std::string& caFile() const { return ca_file_; }
  // The session to resume with `server`, or null (owned here).
  SSL_SESSION* session(const std::string& server) const;
  void remember(const std::string& server, SslSession session);
  // Opportunistic TLS whose handshake with `server` failed: the connections to it go in the clear
  // until `clear_for` has passed (RFC 7435 §3: opportunistic security falls back to cleartext
  // rather than fail), so that the sender's next try is delivered, whichever worker takes it: what
  // is learnt here is shared by every worker's ClientTls (under a lock).
  static void handshakeFailed(const std::string& server, std::chrono::steady_clock::time_point now);
  static bool inTheClear(const std::string& server, std::chrono::steady_clock::time_point now);
  // Longer than a sender waits before its next try (Postfix: 300 to 4,000 s), as long as Postfix
  // keeps a TLS session for a server (smtp_tls_session_cache_timeout, 3,600 s).
  static constexpr std::chrono::seconds clear_for{3600};

 private:
  ClientTls() = default;
  SslContext context_;
  std::string ca_file_;
  std::vector<std::pair<std::string, SslSession>> sessions_;
};

// What --check-config and a start or reload check beyond the TOML: the server's certificates and
// keys ([tls]), and the downstream's CA file. Empty when all is well.
std::vector<std::string> checkTlsFiles(const Config& config);

}  // namespace mailgate
