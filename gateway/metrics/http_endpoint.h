#pragma once
// The HTTP listener of [metrics]: /metrics (Prometheus text format), /healthz, /readyz, and with
// [history] the decision-history page under /history (gateway/history/history_page.h).
//
// Built on libmicrohttpd (Debian's libmicrohttpd-dev): a C library maintained for two decades,
// which parses HTTP itself (no hand-written parser here) and serves from threads of its own (one
// per connection, at most max_http_connections), so a scrape, a slow /readyz probe or a long
// history search never runs on the gateway's event loops, nor waits behind one another. cpp-httplib would do the
// same but is a header of 10,000 lines compiled into every unit that includes it; Boost.Beast
// needs an Asio loop of its own beside libuv's.

#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gateway/c/microhttpd.h"
#include "gateway/config/config.h"
#include "gateway/history/history_page.h"
#include "gateway/metrics/metrics.h"

namespace mailgate {

// Connections the listener serves at once: Prometheus and a few balancers' checks, not a crowd.
constexpr unsigned max_http_connections = 64;
// A request must be complete within this: an idle connection does not hold a slot.
constexpr unsigned http_connection_timeout_seconds = 10;

class HttpEndpoint {
 public:
  // Ready: "" when the gateway can take mail, else why not (the 503's body). Called on the
  // listener's threads, several at once.
  using Readiness = std::function<std::string()>;

  // Listens on config.listen; `metrics` must outlive the endpoint. `history_path`: the decision
  // history the page reads, empty when there is none.
  static std::expected<std::unique_ptr<HttpEndpoint>, std::string> start(const MetricsConfig& config,
                                                                         const Metrics& metrics, Readiness readiness,
                                                                         std::string history_path = {});
  HttpEndpoint(const MetricsConfig& config, const Metrics& metrics, Readiness readiness, std::string history_path);

 private:
  static MHD_Result onRequest(void* self, MHD_Connection* connection, const char* url, const char* method,
                              const char* version, const char* upload_data, size_t* upload_data_size,
                              void** request_state);
  MHD_Result answer(MHD_Connection* connection, std::string_view url, std::string_view method);
  bool authorized(MHD_Connection* connection) const;

  std::string token_sha256_;
  const Metrics& metrics_;
  Readiness readiness_;
  std::optional<HistoryPage> history_page_;
  MhdDaemon daemon_;  // last: stopped (its thread joined) before the members it uses go
};

}  // namespace mailgate
