#include "gateway/metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

namespace mailgate {
namespace {

MHD_Result send(MHD_Connection* connection, unsigned status, std::string_view body, const char* content_type) {
  MhdResponse response(MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY));
  if (!response) return MHD_NO;
  MHD_add_response_header(response.get(), MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (status == MHD_HTTP_UNAUTHORIZED) MHD_add_response_header(response.get(), MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  return MHD_queue_response(connection, status, response.get());
}

std::string sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) return {};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

HttpEndpoint::HttpEndpoint(const MetricsConfig& config, const Metrics& metrics, Readiness readiness)
    : token_sha256_(config.token_sha256), metrics_(metrics), readiness_(std::move(readiness)) {}

std::expected<std::unique_ptr<HttpEndpoint>, std::string> HttpEndpoint::start(const MetricsConfig& config,
                                                                              const Metrics& metrics,
                                                                              Readiness readiness) {
  auto endpoint = std::make_unique<HttpEndpoint>(config, metrics, std::move(readiness));
  sockaddr_storage address{};
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
  const std::string& host = config.listen.host;
  if (host.find(':') != std::string::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(config.listen.port);
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1) return std::unexpected("metrics.listen: bad address " + host);
    flags |= MHD_USE_IPv6;
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(config.listen.port);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) return std::unexpected("metrics.listen: bad address " + host);
  }
  endpoint->daemon_.reset(MHD_start_daemon(flags, config.listen.port, nullptr, nullptr, &HttpEndpoint::onRequest,
                                           endpoint.get(), MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&address),
                                           MHD_OPTION_CONNECTION_LIMIT, max_http_connections,
                                           MHD_OPTION_CONNECTION_TIMEOUT, http_connection_timeout_seconds,
                                           MHD_OPTION_END));
  if (!endpoint->daemon_) return std::unexpected("cannot listen on " + config.listen.text() + " (metrics.listen)");
  return endpoint;
}

MHD_Result HttpEndpoint::onRequest(void* self, MHD_Connection* connection, const char* url, const char* method,
                                   const char*, const char*, size_t* upload_data_size, void** request_state) {
  // libmicrohttpd calls once with the headers, then again for the body: answer on the second
  // call, with no body taken (every path here is a GET).
  if (*request_state == nullptr) {
    *request_state = self;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0;  // a body nobody asked for is read and ignored
    return MHD_YES;
  }
  return static_cast<HttpEndpoint*>(self)->answer(connection, url, method);
}

bool HttpEndpoint::authorized(MHD_Connection* connection) const {
  if (token_sha256_.empty()) return true;
  const char* header = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (header == nullptr) return false;
  std::string_view value(header);
  constexpr std::string_view scheme = "Bearer ";  // RFC 6750 §2.1
  if (value.size() <= scheme.size() || strncasecmp(value.data(), scheme.data(), scheme.size()) != 0) return false;
  std::string given = sha256Hex(value.substr(scheme.size()));
  // Compared in constant time: a timing difference would tell an attacker how much of a guess
  // matched (of the hash, which is little, but costs nothing to deny).
  return given.size() == token_sha256_.size() && CRYPTO_memcmp(given.data(), token_sha256_.data(), given.size()) == 0;
}

MHD_Result HttpEndpoint::answer(MHD_Connection* connection, std::string_view url, std::string_view method) {
  constexpr const char* text = "text/plain; charset=utf-8";
  if (!authorized(connection)) return send(connection, MHD_HTTP_UNAUTHORIZED, "token required\n", text);
  if (method != "GET" && method != "HEAD") return send(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n", text);
  if (url == "/metrics") return send(connection, MHD_HTTP_OK, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
  if (url == "/healthz") return send(connection, MHD_HTTP_OK, "ok\n", text);
  if (url == "/readyz") {
    std::string problem = readiness_();
    if (problem.empty()) return send(connection, MHD_HTTP_OK, "ready\n", text);
    return send(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: " + problem + "\n", text);
  }
  return send(connection, MHD_HTTP_NOT_FOUND, "not found: /metrics, /healthz, /readyz\n", text);
}

}  // namespace mailgate
