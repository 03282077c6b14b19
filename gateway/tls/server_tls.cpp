#include "gateway/tls/server_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdio>
#include <mutex>

#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

// The session id context ties cached sessions to this application (OpenSSL refuses to resume a
// session without one when it could not tell whose it is).
constexpr unsigned char session_id_context[] = "mailgate";

int protocolVersion(const std::string& name) { return name == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION; }

// The leaf certificate of a chain file, read on its own to check its dates.
std::expected<X509Certificate, std::string> readLeaf(const std::string& path) {
  std::unique_ptr<std::FILE, CFree<&std::fclose>> file(std::fopen(path.c_str(), "rb"));
  if (!file) return std::unexpected(path + ": cannot read the certificate");
  X509Certificate leaf(PEM_read_X509(file.get(), nullptr, nullptr, nullptr));
  if (!leaf) return std::unexpected(path + ": no PEM certificate in it (" + takeOpensslError() + ")");
  return leaf;
}

std::expected<void, std::string> addPair(SSL_CTX* context, const std::string& certificate, const std::string& key) {
  auto leaf = readLeaf(certificate);
  if (!leaf) return std::unexpected(leaf.error());
  if (X509_cmp_current_time(X509_get0_notAfter(leaf->get())) <= 0)
    return std::unexpected(certificate + ": the certificate has expired");
  if (X509_cmp_current_time(X509_get0_notBefore(leaf->get())) > 0)
    return std::unexpected(certificate + ": the certificate is not valid yet");
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(context, certificate.c_str()) != 1)
    return std::unexpected(certificate + ": cannot load the certificate chain (" + takeOpensslError() + ")");
  std::unique_ptr<std::FILE, CFree<&std::fclose>> key_file(std::fopen(key.c_str(), "rb"));
  if (!key_file) return std::unexpected(key + ": cannot read the private key");
  PrivateKey private_key(PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr));
  if (!private_key) return std::unexpected(key + ": cannot load the private key (" + takeOpensslError() + ")");
  if (X509_check_private_key(leaf->get(), private_key.get()) != 1) {
    ERR_clear_error();
    return std::unexpected(key + ": the key does not match the certificate " + certificate);
  }
  if (SSL_CTX_use_PrivateKey(context, private_key.get()) != 1 || SSL_CTX_check_private_key(context) != 1)
    return std::unexpected(key + ": cannot use the private key (" + takeOpensslError() + ")");
  return {};
}

std::expected<SslContext, std::string> serverContext(const TlsConfig& config) {
  SslContext context(SSL_CTX_new(TLS_server_method()));
  if (!context) return std::unexpected("SSL_CTX_new: " + takeOpensslError());
  SSL_CTX* ctx = context.get();
  SSL_CTX_set_min_proto_version(ctx, protocolVersion(config.min_version));
  // Idle connections hand their read and write buffers back (about 34 KiB each otherwise).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // Renegotiation is a denial-of-service lever and has no use in SMTP.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof session_id_context - 1);
  // One TLS 1.3 ticket per handshake, not OpenSSL's two: an MTA reconnects one connection at a
  // time, and each ticket costs an encryption on every handshake.
  SSL_CTX_set_num_tickets(ctx, 1);
  if (!config.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, config.ciphers.c_str()) != 1)
    return std::unexpected("tls.ciphers: no usable cipher in \"" + config.ciphers + "\"");
  if (!config.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, config.ciphersuites.c_str()) != 1)
    return std::unexpected("tls.ciphersuites: no usable suite in \"" + config.ciphersuites + "\"");
  return context;
}

bool nameMatches(std::string_view pattern, std::string_view name) {
  if (pattern == name) return true;
  // "*.example.org" serves exactly one label in front of example.org (RFC 6125 §6.4.3).
  if (pattern.size() < 3 || pattern.substr(0, 2) != "*.") return false;
  std::size_t dot = name.find('.');
  return dot != std::string_view::npos && dot > 0 && name.substr(dot + 1) == pattern.substr(2);
}

int onServerName(SSL* ssl, int*, void* argument) {
  const auto* tls = static_cast<const ServerTls*>(argument);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  if (SSL_CTX* context = tls->contextFor(asciiLower(name))) SSL_set_SSL_CTX(ssl, context);
  // An unknown name gets the default certificate, as Postfix and most servers do.
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::expected<std::shared_ptr<const ServerTls>, std::string> ServerTls::load(const TlsConfig& config) {
  std::shared_ptr<ServerTls> tls(new ServerTls());
  auto main = serverContext(config);
  if (!main) return std::unexpected(main.error());
  tls->default_ = std::move(*main);
  if (auto added = addPair(tls->default_.get(), config.certificate, config.key); !added)
    return std::unexpected(added.error());
  for (const auto& pair : config.certificates) {
    if (pair.names.empty()) {
      if (auto added = addPair(tls->default_.get(), pair.certificate, pair.key); !added)
        return std::unexpected(added.error());
      continue;
    }
    auto context = serverContext(config);
    if (!context) return std::unexpected(context.error());
    if (auto added = addPair(context->get(), pair.certificate, pair.key); !added) return std::unexpected(added.error());
    for (const auto& name : pair.names) tls->names_.push_back({asciiLower(name), context->get()});
    tls->named_contexts_.push_back(std::move(*context));
  }
  SSL_CTX_set_tlsext_servername_callback(tls->default_.get(), onServerName);
  SSL_CTX_set_tlsext_servername_arg(tls->default_.get(), tls.get());
  return std::shared_ptr<const ServerTls>(std::move(tls));
}

SSL_CTX* ServerTls::contextFor(std::string_view name) const {
  for (const auto& named : names_)
    if (nameMatches(named.name, name)) return named.context;
  return nullptr;
}

std::expected<std::shared_ptr<ClientTls>, std::string> ClientTls::make(const std::string& ca_file) {
  std::shared_ptr<ClientTls> tls(new ClientTls());
  tls->ca_file_ = ca_file;
  tls->context_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = tls->context_.get();
  if (ctx == nullptr) return std::unexpected("SSL_CTX_new: " + takeOpensslError());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Sessions are kept by the caller per downstream server (remember()), not in OpenSSL's cache.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  ERR_clear_error();
  if (ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
      return std::unexpected("the system's trust anchors: " + takeOpensslError());
  } else if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return std::unexpected(ca_file + ": cannot load CA certificates (" + takeOpensslError() + ")");
  }
  return tls;
}

SSL_SESSION* ClientTls::session(const std::string& server) const {
  for (const auto& [name, session] : sessions_)
    if (name == server) return session.get();
  return nullptr;
}

void ClientTls::remember(const std::string& server, SslSession session) {
  if (!session || SSL_SESSION_is_resumable(session.get()) != 1) return;
  for (auto& [name, kept] : sessions_) {
    if (name == server) {
      kept = std::move(session);
      return;
    }
  }
  sessions_.emplace_back(server, std::move(session));
}

namespace {

// The downstream servers whose opportunistic handshake failed, and until when they are spoken to
// in the clear. A few entries at most (one per downstream address and EHLO name).
struct ClearList {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> until;
};

ClearList& clearList() {
  static ClearList list;
  return list;
}

}  // namespace

void ClientTls::handshakeFailed(const std::string& server, std::chrono::steady_clock::time_point now) {
  ClearList& list = clearList();
  std::lock_guard lock(list.mutex);
  std::erase_if(list.until, [&](const auto& entry) { return entry.first == server || entry.second <= now; });
  list.until.emplace_back(server, now + clear_for);
}

bool ClientTls::inTheClear(const std::string& server, std::chrono::steady_clock::time_point now) {
  ClearList& list = clearList();
  std::lock_guard lock(list.mutex);
  for (const auto& [name, until] : list.until)
    if (name == server) return now < until;
  return false;
}

std::vector<std::string> checkTlsFiles(const Config& config) {
  std::vector<std::string> errors;
  if (config.tls) {
    if (auto loaded = ServerTls::load(*config.tls); !loaded) errors.push_back(loaded.error());
  }
  if (config.downstream.address && config.downstream.tls != DownstreamTls::None) {
    if (auto made = ClientTls::make(config.downstream.tls_ca_file); !made) errors.push_back(made.error());
  }
  return errors;
}

}  // namespace mailgate
