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
  if (std::string_view(content_type).starts_with("text/html")) {
    // The page shows what senders wrote (subjects, addresses): escaped, and no script may run nor
    // anything load from elsewhere should an escape ever be missed.
    MHD_add_response_header(response.get(), "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'");
    MHD_add_response_header(response.get(), "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response.get(), "Referrer-Policy", "no-referrer");
    MHD_add_response_header(response.get(), MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  }
  if (status == MHD_HTTP_UNAUTHORIZED) {
    // Scripts send the token as a bearer token (RFC 6750); a browser asks for it as the password
    // of Basic authentication (RFC 7617), any user name.
    MHD_add_response_header(response.get(), MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    MHD_add_response_header(response.get(), MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"mailgate\", charset=\"UTF-8\"");
  }
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

// The secret a request carries: a bearer token, or the password of Basic authentication.
std::optional<std::string> presentedSecret(std::string_view header) {
  constexpr std::string_view bearer = "Bearer ", basic = "Basic ";
  auto starts = [&](std::string_view scheme) {
    return header.size() > scheme.size() && strncasecmp(header.data(), scheme.data(), scheme.size()) == 0;
  };
  if (starts(bearer)) return std::string(header.substr(bearer.size()));
  if (!starts(basic)) return std::nullopt;
  std::string_view encoded = header.substr(basic.size());
  if (encoded.size() > 1024 || encoded.size() % 4 != 0) return std::nullopt;
  std::string decoded(encoded.size() / 4 * 3, '\0');
  int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                               reinterpret_cast<const unsigned char*>(encoded.data()), static_cast<int>(encoded.size()));
  if (length < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's zero octets in; the user:password text has none.
  decoded.resize(static_cast<std::size_t>(length));
  while (!decoded.empty() && decoded.back() == '\0') decoded.pop_back();
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return decoded.substr(colon + 1);
}

}  // namespace

HttpEndpoint::HttpEndpoint(const MetricsConfig& config, const Metrics& metrics, Readiness readiness,
                           std::string history_path)
    : token_sha256_(config.token_sha256), metrics_(metrics), readiness_(std::move(readiness)) {
  if (!history_path.empty()) history_page_.emplace(std::move(history_path));
}

std::expected<std::unique_ptr<HttpEndpoint>, std::string> HttpEndpoint::start(const MetricsConfig& config,
                                                                              const Metrics& metrics,
                                                                              Readiness readiness,
                                                                              std::string history_path) {
  auto endpoint = std::make_unique<HttpEndpoint>(config, metrics, std::move(readiness), std::move(history_path));
  sockaddr_storage address{};
  // A thread per connection: a history summary over a day of decisions takes seconds, and must
  // not hold up a scrape or a readiness probe behind it.
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG;
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
  auto secret = presentedSecret(header);
  if (!secret) return false;
  std::string given = sha256Hex(*secret);
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
  if (url == "/history" || url.starts_with("/history/")) {
    if (!history_page_) return send(connection, MHD_HTTP_NOT_FOUND, "no decision history: add a [history] table to the configuration\n", text);
    PageReply reply = history_page_->answer(url, [connection](const char* name) -> std::optional<std::string> {
      const char* value = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, name);
      if (value == nullptr) return std::nullopt;
      return std::string(value);
    });
    return send(connection, reply.status, reply.body, reply.content_type);
  }
  return send(connection, MHD_HTTP_NOT_FOUND, "not found: /metrics, /healthz, /readyz, /history\n", text);
}

}  // namespace mailgate
