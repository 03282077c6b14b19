#include "gateway/tls/tls_stream.h"

#include <openssl/err.h>

#include <array>
#include <utility>

namespace mailgate {
namespace {

// Decrypted bytes are taken out of OpenSSL in pieces of one TLS record's maximum plaintext
// (RFC 8446 §5.1: 2^14 octets).
constexpr std::size_t record_plaintext_octets = 16 * 1024;

}  // namespace

std::string takeOpensslError(std::string fallback) {
  unsigned long code = ERR_get_error();
  if (code == 0) return fallback;
  std::array<char, 256> text{};
  ERR_error_string_n(code, text.data(), text.size());
  ERR_clear_error();
  return text.data();
}

TlsStream::TlsStream(SslConnection ssl) : ssl_(std::move(ssl)) {}

std::expected<TlsStream, std::string> TlsStream::server(SSL_CTX* context) {
  ERR_clear_error();
  SslConnection ssl(SSL_new(context));
  if (!ssl) return std::unexpected("SSL_new: " + takeOpensslError());
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    return std::unexpected(std::string("out of memory for TLS buffers"));
  }
  // An empty memory BIO says "retry" rather than end of file: more bytes may come from the socket.
  BIO_set_mem_eof_return(in, -1);
  BIO_set_mem_eof_return(out, -1);
  SSL_set_bio(ssl.get(), in, out);
  SSL_set_accept_state(ssl.get());
  TlsStream stream(std::move(ssl));
  stream.network_in_ = in;
  stream.network_out_ = out;
  return stream;
}

std::expected<TlsStream, std::string> TlsStream::client(SSL_CTX* context, const std::string& sni,
                                                        const std::string& verify_name, SSL_SESSION* resume) {
  auto stream = server(context);
  if (!stream) return stream;
  SSL* ssl = stream->ssl_.get();
  SSL_set_connect_state(ssl);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  if (!verify_name.empty()) {
    // RFC 6125 name check against the certificate's DNS names (no wildcard in the middle).
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    // An address literal is matched against the certificate's IP addresses, a name against its
    // DNS names.
    X509_VERIFY_PARAM* parameters = SSL_get0_param(ssl);
    bool literal = X509_VERIFY_PARAM_set1_ip_asc(parameters, verify_name.c_str()) == 1;
    ERR_clear_error();
    if (!literal && SSL_set1_host(ssl, verify_name.c_str()) != 1)
      return std::unexpected("cannot verify the name " + verify_name);
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
  }
  if (resume != nullptr) SSL_set_session(ssl, resume);
  return stream;
}

std::expected<void, std::string> TlsStream::start() { return pump(); }

std::expected<void, std::string> TlsStream::receive(std::string_view ciphertext) {
  if (failed_) return std::unexpected(std::string("TLS connection failed earlier"));
  if (!ciphertext.empty() && BIO_write(network_in_, ciphertext.data(), static_cast<int>(ciphertext.size())) <= 0)
    return std::unexpected(std::string("out of memory for TLS input"));
  return pump();
}

std::expected<void, std::string> TlsStream::send(std::string_view plaintext) {
  if (failed_) return std::unexpected(std::string("TLS connection failed earlier"));
  unsent_.append(plaintext);
  return pump();
}

std::expected<void, std::string> TlsStream::pump() {
  SSL* ssl = ssl_.get();
  ERR_clear_error();
  auto failure = [&](int result, std::string_view during) -> std::unexpected<std::string> {
    failed_ = true;
    int error = SSL_get_error(ssl, result);
    std::string why;
    if (error == SSL_ERROR_ZERO_RETURN) why = "closed by the peer (close_notify)";
    else if (error == SSL_ERROR_SYSCALL) why = "the peer ended the connection without close_notify";
    else why = takeOpensslError("TLS error " + std::to_string(error));
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) why += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
    return std::unexpected(std::string(during) + ": " + why);
  };
  if (!established_) {
    int result = SSL_do_handshake(ssl);
    if (result != 1) {
      int error = SSL_get_error(ssl, result);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return {};
      return failure(result, "handshake");
    }
    established_ = true;
    newly_established_ = true;
  }
  std::array<char, record_plaintext_octets> piece;
  while (true) {
    int count = SSL_read(ssl, piece.data(), static_cast<int>(piece.size()));
    if (count > 0) {
      plaintext_.append(piece.data(), static_cast<std::size_t>(count));
      continue;
    }
    int error = SSL_get_error(ssl, count);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) break;
    return failure(count, "read");
  }
  if (!unsent_.empty()) {
    // A memory BIO takes everything: SSL_write either writes it all or fails.
    int count = SSL_write(ssl, unsent_.data(), static_cast<int>(unsent_.size()));
    if (count <= 0) return failure(count, "write");
    std::string().swap(unsent_);
  }
  return {};
}

void TlsStream::shutdown() {
  if (failed_ || !established_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_.get());  // the peer's close_notify is not waited for: the socket closes next
  ERR_clear_error();
}

std::string TlsStream::takePlaintext() {
  std::string out;
  out.swap(plaintext_);
  return out;
}

bool TlsStream::hasCiphertext() const { return BIO_ctrl_pending(network_out_) > 0; }

std::string TlsStream::takeCiphertext() {
  std::string out(BIO_ctrl_pending(network_out_), '\0');
  if (out.empty()) return out;
  int count = BIO_read(network_out_, out.data(), static_cast<int>(out.size()));
  out.resize(count > 0 ? static_cast<std::size_t>(count) : 0);
  return out;
}

bool TlsStream::takeEstablished() { return std::exchange(newly_established_, false); }

TlsFacts TlsStream::facts() const {
  TlsFacts facts;
  SSL* ssl = ssl_.get();
  facts.version = SSL_get_version(ssl);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl)) facts.cipher = SSL_CIPHER_get_name(cipher);
  if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) facts.sni = name;
  facts.resumed = SSL_session_reused(ssl) == 1;
  return facts;
}

SslSession TlsStream::session() const { return SslSession(SSL_get1_session(ssl_.get())); }

}  // namespace mailgate
