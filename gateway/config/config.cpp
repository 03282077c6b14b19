// The config loader: TOML text → a validated Config (design.md §6). Every table is read through
// Settings, so a misspelt key is an error in [server] just as in a [[stage]] table.

#include "gateway/config/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

#include "gateway/config/settings_impl.h"
#include "gateway/util/c_free.h"
#include "gateway/util/ascii.h"
#include "gateway/util/ip_address.h"

namespace mailgate {
namespace {

using config_detail::isCidr;
using config_detail::isDomainName;
using config_detail::isIpLiteral;
using config_detail::quoted;

constexpr uint16_t smtp_port = 25;
constexpr uint16_t dns_port = 53;
constexpr uint16_t metrics_port = 9025;
constexpr uint16_t submissions_port = 465;  // RFC 8314 §7.3
// Sessions and shutdowns longer than a day are a typo ("5d" for "5m"), not a policy.
constexpr Duration max_server_timeout = std::chrono::hours(24);
constexpr int64_t max_recipients_limit = 100000;
constexpr int64_t max_connections_limit = 1000000;
constexpr int64_t max_workers = 256;
// Idle downstream connections kept per worker; each holds a socket on the mailbox server.
constexpr int64_t max_idle_connections = 1000;
constexpr int64_t max_dns_retries = 10;  // each waits dns.timeout: more only delays a tempfail
// Memory held per transaction before spilling to the spool file; above this, many concurrent
// transactions could exhaust memory, which is what the spool file is there to avoid.
constexpr uint64_t max_spool_memory = uint64_t{1} << 30;
constexpr uint64_t min_history_size = uint64_t{1} << 20;

constexpr std::string_view embedded_source = "<embedded default>";

// The pipeline of a config that has no [[stage]] table: a bound on message size is never left
// out by omission (the same stage as the embedded default's).
constexpr std::string_view default_pipeline = "[[stage]]\ntype = \"size_limit\"\nmax_bytes = \"25MiB\"\n";
constexpr std::string_view default_pipeline_notice = "no [[stage]]: using the default size_limit of 25 MiB";


template <class T>
void readInteger(Settings& table, std::string_view key, int64_t min, int64_t max, T& out) {
  if (auto value = table.integer(key, min, max)) out = static_cast<T>(*value);
}

void readDuration(Settings& table, std::string_view key, Duration& out) {
  auto value = table.duration(key);
  if (!value) return;
  if (*value <= Duration::zero()) return table.fail(key, "must be more than 0");
  out = *value;
}

void readServerTimeout(Settings& table, std::string_view key, Duration& out) {
  Duration value = out;
  readDuration(table, key, value);
  if (value > max_server_timeout) return table.fail(key, "must be at most 1d");
  out = value;
}

void readNonEmpty(Settings& table, std::string_view key, std::string& out) {
  auto value = table.string(key);
  if (!value) return;
  if (value->empty()) return table.fail(key, "must not be empty");
  out = std::move(*value);
}

std::string notADomain(std::string_view name) { return quoted(name) + " is not a valid domain name"; }

}  // namespace

class ConfigLoader {
 public:
  static std::expected<Config, std::vector<ConfigError>> load(std::string_view text,
                                                              const std::string& source);

 private:
  using Reader = void (ConfigLoader::*)(Settings&);

  void section(Settings& root, std::string_view name, Reader read);
  void readServer(Settings& table);
  void readDownstream(Settings& table);
  void readMaildir(Settings& table) { readNonEmpty(table, "path", config_.maildir.path); }
  void readSpool(Settings& table);
  void readDns(Settings& table);
  void readLog(Settings& table) { readNonEmpty(table, "path", config_.log.path); }
  void readTls(Settings& table);
  void readMetrics(Settings& table);
  void readHistory(Settings& table);
  void readStages(Settings& root);
  void collect(const std::vector<ConfigError>& errors) {
    errors_.insert(errors_.end(), errors.begin(), errors.end());
  }

  // A getter's nullopt means "absent" or "bad and reported"; only the first still needs a word.
  template <class Read>
  static auto required(Settings& table, std::string_view key, std::string_view example, Read read) {
    size_t errors_before = table.errors().size();
    auto value = read();
    if (!value && table.errors().size() == errors_before)
      table.fail(key, "is required (e.g. " + std::string(example) + ")");
    return value;
  }
  // Addresses the gateway binds or sends to without a resolver, so names are refused.
  static std::optional<std::vector<HostPort>> ipAddresses(Settings& table, std::string_view key,
                                                          uint16_t port);

  Config config_;
  std::vector<ConfigError> errors_;
};

std::expected<Config, std::vector<ConfigError>> ConfigLoader::load(std::string_view text,
                                                                   const std::string& source) {
  auto root = Settings::parse(text, source);
  if (!root) return std::unexpected(std::vector<ConfigError>{std::move(root.error())});
  ConfigLoader loader;
  loader.config_.source = source;
  loader.section(*root, "server", &ConfigLoader::readServer);
  loader.section(*root, "downstream", &ConfigLoader::readDownstream);
  loader.section(*root, "maildir", &ConfigLoader::readMaildir);
  loader.section(*root, "spool", &ConfigLoader::readSpool);
  loader.section(*root, "dns", &ConfigLoader::readDns);
  loader.section(*root, "log", &ConfigLoader::readLog);
  loader.section(*root, "tls", &ConfigLoader::readTls);
  loader.section(*root, "metrics", &ConfigLoader::readMetrics);
  loader.section(*root, "history", &ConfigLoader::readHistory);
  loader.readStages(*root);
  // TLS on the client's side needs a certificate to serve.
  if (!loader.config_.tls) {
    if (loader.config_.server.require_tls)
      root->fail("server.require_tls", "needs a [tls] table with the certificate and key to offer STARTTLS with");
    if (!loader.config_.server.listen_tls.empty())
      root->fail("server.listen_tls", "needs a [tls] table with the certificate and key to serve");
  }
  loader.collect(root->finish());
  if (loader.errors_.empty()) return std::move(loader.config_);
  // In file order, as an operator fixes them; the tables were read in a fixed order instead.
  std::ranges::stable_sort(loader.errors_, {}, &ConfigError::line);
  return std::unexpected(std::move(loader.errors_));
}

void ConfigLoader::section(Settings& root, std::string_view name, Reader read) {
  std::optional<Settings> table = root.table(name);
  if (!table) return;
  (this->*read)(*table);
  collect(table->finish());
}

std::optional<std::vector<HostPort>> ConfigLoader::ipAddresses(Settings& table, std::string_view key,
                                                               uint16_t port) {
  // Read as strings and parsed here rather than with hostPorts(), so that every bad entry is
  // reported, the names as well as the malformed ones.
  auto texts = table.strings(key);
  if (!texts) return std::nullopt;
  std::vector<HostPort> addresses;
  for (size_t i = 0; i < texts->size(); ++i) {
    auto address = parseHostPort((*texts)[i], port);
    if (!address)
      table.failEntry(key, i, std::move(address.error()));
    else if (!isIpLiteral(address->host))
      table.failEntry(key, i, quoted(address->host) + " is not an IP address (names are not allowed here)");
    else
      addresses.push_back(std::move(*address));
  }
  if (addresses.size() != texts->size()) return std::nullopt;
  return addresses;
}

void ConfigLoader::readServer(Settings& table) {
  ServerConfig& server = config_.server;
  if (auto listen = ipAddresses(table, "listen", smtp_port)) {
    if (listen->empty())
      table.fail("listen", "must list at least one address");
    else
      server.listen = std::move(*listen);
  }
  if (auto hostname = table.string("hostname")) {
    if (!isDomainName(*hostname))
      table.fail("hostname", notADomain(*hostname));
    else
      server.hostname = std::move(*hostname);
  }
  if (auto domains = table.strings("domains")) {
    if (domains->empty()) table.fail("domains", "must list at least one domain");
    // Lower case once here, so that matching a recipient's domain is a plain comparison.
    for (size_t i = 0; i < domains->size(); ++i) {
      if (!isDomainName((*domains)[i])) table.failEntry("domains", i, notADomain((*domains)[i]));
      (*domains)[i] = asciiLower((*domains)[i]);
    }
    server.domains = std::move(*domains);
  }
  readInteger(table, "max_recipients", 1, max_recipients_limit, server.max_recipients);
  readInteger(table, "max_connections", 1, max_connections_limit, server.max_connections);
  // A lower max_connections alone lowers the per-client default with it rather than failing
  // over a key the operator did not write.
  server.max_connections_per_client = std::min(server.max_connections_per_client, server.max_connections);
  if (auto per_client = table.integer("max_connections_per_client", 1, max_connections_limit)) {
    if (*per_client > server.max_connections)
      table.fail("max_connections_per_client",
                 "must not exceed server.max_connections (" + std::to_string(server.max_connections) + ")");
    else
      server.max_connections_per_client = static_cast<uint32_t>(*per_client);
  }
  readServerTimeout(table, "idle_timeout", server.idle_timeout);
  readServerTimeout(table, "command_timeout", server.command_timeout);
  readServerTimeout(table, "shutdown_timeout", server.shutdown_timeout);
  readInteger(table, "workers", 0, max_workers, server.workers);
  if (auto proxy_protocol = table.boolean("proxy_protocol")) server.proxy_protocol = *proxy_protocol;
  if (auto sources = table.strings("proxy_sources")) {
    for (size_t i = 0; i < sources->size(); ++i)
      if (!isCidr((*sources)[i]))
        table.failEntry("proxy_sources", i,
                        quoted((*sources)[i]) + " is not a CIDR block such as \"10.0.0.0/8\" or \"::1/128\"");
    server.proxy_sources = std::move(*sources);
  }
  if (server.proxy_protocol && server.proxy_sources.empty())
    table.fail("proxy_sources", "must not be empty when server.proxy_protocol is true");
  if (auto listen_tls = ipAddresses(table, "listen_tls", submissions_port)) server.listen_tls = std::move(*listen_tls);
  if (auto require_tls = table.boolean("require_tls")) server.require_tls = *require_tls;
}

void ConfigLoader::readDownstream(Settings& table) {
  DownstreamConfig& downstream = config_.downstream;
  downstream.address =
      required(table, "address", "\"10.0.0.5:25\"", [&] { return table.hostPort("address", smtp_port); });
  readDuration(table, "timeout", downstream.timeout);
  readDuration(table, "connect_timeout", downstream.connect_timeout);
  readInteger(table, "idle_connections", 0, max_idle_connections, downstream.idle_connections);
  readServerTimeout(table, "idle_timeout", downstream.idle_timeout);
  if (auto helo = table.string("helo")) {
    if (!isDomainName(*helo))
      table.fail("helo", notADomain(*helo));
    else
      downstream.helo = std::move(*helo);
  }
  if (auto tls = table.string("tls")) {
    if (*tls == "none") downstream.tls = DownstreamTls::None;
    else if (*tls == "opportunistic") downstream.tls = DownstreamTls::Opportunistic;
    else if (*tls == "required") downstream.tls = DownstreamTls::Required;
    else table.fail("tls", "must be \"none\", \"opportunistic\" or \"required\", not " + quoted(*tls));
  }
  readNonEmpty(table, "tls_ca_file", downstream.tls_ca_file);
  if (auto name = table.string("tls_name")) {
    if (!isDomainName(*name) && !isIpLiteral(*name))
      table.fail("tls_name", notADomain(*name));
    else
      downstream.tls_name = std::move(*name);
  }
}

void ConfigLoader::readSpool(Settings& table) {
  readNonEmpty(table, "path", config_.spool.path);
  if (auto limit = table.size("memory_limit")) {
    if (*limit > max_spool_memory)
      table.fail("memory_limit", "must be at most 1GiB");
    else
      config_.spool.memory_limit = *limit;
  }
}

void ConfigLoader::readDns(Settings& table) {
  if (auto servers = ipAddresses(table, "servers", dns_port)) config_.dns.servers = std::move(*servers);
  readDuration(table, "timeout", config_.dns.timeout);
  readInteger(table, "retries", 0, max_dns_retries, config_.dns.retries);
}

void ConfigLoader::readTls(Settings& table) {
  TlsConfig tls;
  auto readPath = [](Settings& from, std::string_view key, std::string_view example, std::string& out) {
    auto value = required(from, key, example, [&] { return from.string(key); });
    if (value && value->empty())
      from.fail(key, "must not be empty");
    else if (value)
      out = std::move(*value);
  };
  readPath(table, "certificate", "\"/etc/mailgate/tls/fullchain.pem\"", tls.certificate);
  readPath(table, "key", "\"/etc/mailgate/tls/privkey.pem\"", tls.key);
  if (auto version = table.string("min_version")) {
    if (*version != "TLSv1.2" && *version != "TLSv1.3")
      table.fail("min_version", "must be \"TLSv1.2\" or \"TLSv1.3\", not " + quoted(*version));
    else
      tls.min_version = std::move(*version);
  }
  readNonEmpty(table, "ciphers", tls.ciphers);
  readNonEmpty(table, "ciphersuites", tls.ciphersuites);
  for (Settings& entry : table.tables("certificates")) {
    TlsCertificateConfig pair;
    readPath(entry, "certificate", "\"/etc/mailgate/tls/ecdsa.pem\"", pair.certificate);
    readPath(entry, "key", "\"/etc/mailgate/tls/ecdsa.key\"", pair.key);
    if (auto names = entry.strings("names")) {
      for (size_t i = 0; i < names->size(); ++i) {
        const std::string& name = (*names)[i];
        bool wildcard = name.starts_with("*.") && isDomainName(std::string_view(name).substr(2));
        if (!wildcard && !isDomainName(name)) entry.failEntry("names", i, notADomain(name));
        (*names)[i] = asciiLower(name);
      }
      pair.names = std::move(*names);
    }
    collect(entry.finish());
    tls.certificates.push_back(std::move(pair));
  }
  config_.tls = std::move(tls);
}

void ConfigLoader::readMetrics(Settings& table) {
  auto listen =
      required(table, "listen", "\"127.0.0.1:9025\"", [&] { return table.hostPort("listen", metrics_port); });
  if (listen && !isIpLiteral(listen->host)) {
    table.fail("listen", quoted(listen->host) + " is not an IP address (names are not allowed here)");
    return;
  }
  MetricsConfig metrics;
  if (auto hash = table.string("token_sha256")) {
    // The token's SHA-256, so that the config file (often world-readable) does not hold the token.
    bool hex = hash->size() == 64 && std::all_of(hash->begin(), hash->end(), [](char c) {
                 return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
               });
    if (!hex) table.fail("token_sha256", "must be 64 hexadecimal digits (sha256sum of the token)");
    else metrics.token_sha256 = asciiLower(*hash);
  }
  if (!listen) return;
  // Metrics and health say how much mail comes from where and which rules catch it: on anything
  // but loopback they are for whoever holds the token only.
  bool loopback = cidrContains("127.0.0.0/8", listen->host) || cidrContains("::1/128", listen->host);
  if (!loopback && !table.string("token_sha256"))
    table.fail("listen", quoted(listen->text()) + " is not a loopback address: set metrics.token_sha256 (the "
                         "SHA-256 of a token that requests must carry) or listen on 127.0.0.1");
  metrics.listen = std::move(*listen);
  config_.metrics = std::move(metrics);
}

void ConfigLoader::readHistory(Settings& table) {
  HistoryConfig history;
  auto path = required(table, "path", "\"/var/lib/mailgate/history.sqlite\"", [&] { return table.string("path"); });
  if (path && path->empty()) table.fail("path", "must not be empty");
  readDuration(table, "retention", history.retention);
  if (auto size = table.size("max_size")) {
    // SQLite needs room for its own pages and a batch in flight; less than this holds nothing useful.
    if (*size < min_history_size) table.fail("max_size", "must be at least 1MiB");
    else history.max_size = *size;
  }
  if (!path || path->empty()) return;
  history.path = std::move(*path);
  config_.history = std::move(history);
}

void ConfigLoader::readStages(Settings& root) {
  std::size_t errors_before = root.errors().size();
  std::vector<Settings> tables = root.tables("stage");
  if (tables.empty() && root.errors().size() == errors_before) {
    auto defaults = Settings::parse(default_pipeline, config_.source);
    if (defaults) tables = defaults->tables("stage");  // parses: checked by the unit tests
    config_.notices.emplace_back(default_pipeline_notice);
  }
  for (unsigned index = 0; index < tables.size(); ++index) {
    Settings& table = tables[index];
    StageSpec spec;
    spec.index = index;
    if (auto type = required(table, "type", "\"size_limit\"", [&] { return table.string("type"); })) {
      if (type->empty()) table.fail("type", "must not be empty");
      spec.type = std::move(*type);
    }
    if (auto mode = table.string("mode")) {
      if (*mode == "shadow")
        spec.mode = StageMode::Shadow;
      else if (*mode != "enforce")
        table.fail("mode", "must be \"enforce\" or \"shadow\", not " + quoted(*mode));
    }
    // The stage's other keys are its factory's to read and check (buildPipeline → finish()).
    collect(table.errors());
    spec.settings = std::make_shared<Settings>(std::move(table));
    config_.stages.push_back(std::move(spec));
  }
}

std::string HostPort::text() const {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string ConfigError::text() const {
  std::string out = file;
  if (line != 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

std::expected<Config, std::vector<ConfigError>> parseConfig(std::string_view toml_text,
                                                            const std::string& source) {
  return ConfigLoader::load(toml_text, source);
}

std::expected<Config, std::vector<ConfigError>> loadConfig(const std::string& path) {
  auto unreadable = [&](int error) {
    return std::unexpected(std::vector<ConfigError>{
        ConfigError{path, 0, "", "cannot read: " + std::generic_category().message(error)}});
  };
  std::unique_ptr<std::FILE, CFree<&std::fclose>> file(std::fopen(path.c_str(), "rb"));
  if (!file) return unreadable(errno);
  std::string text;
  char buffer[16384];
  size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, count);
  // A directory opens fine and fails only here, with EISDIR.
  if (std::ferror(file.get())) return unreadable(errno);
  return parseConfig(text, path);
}

bool ServerConfig::servesDomain(std::string_view domain) const {
  std::string lower = asciiLower(domain);
  return std::find(domains.begin(), domains.end(), lower) != domains.end();
}

Config embeddedDefaultConfig() {
  auto config = parseConfig(embeddedDefaultConfigText(), std::string(embedded_source));
  if (!config) {
    // A broken built-in default is a bug in this file, caught by the unit tests.
    for (const auto& error : config.error()) std::fprintf(stderr, "mailgate: %s\n", error.text().c_str());
    std::abort();
  }
  return std::move(*config);
}

std::string_view embeddedDefaultConfigText() {
  // The commented lines show every other key with its default; the unit tests uncomment them
  // all and check that the result still loads.
  static constexpr std::string_view text =
      R"(# mailgate configuration: the built-in default, used when no --config is given.
# It accepts mail for localhost on 127.0.0.1:2525 and stores it in ./var/maildir.
# Start your own with: mailgate --print-default-config > mailgate.toml
# Sizes are bytes or strings with a unit ("25MiB", "512KB"); durations are seconds or strings
# with a unit ("250ms", "30s", "5m", "1h", "1d").

[server]
listen = ["127.0.0.1:2525"]             # IP addresses only; "[::]:25" for IPv6
hostname = "localhost"                  # banner, Received:, authserv-id
domains = ["localhost", "localhost.localdomain"]   # recipient domains accepted; others: 554 5.7.1
# max_recipients = 100
# max_connections = 10000
# max_connections_per_client = 50
# idle_timeout = "5m"
# command_timeout = "5m"
# shutdown_timeout = "30s"               # SIGTERM: how long transactions in flight may finish
# workers = 0                            # 0: one per core
# proxy_protocol = false                 # true: expect a PROXY v1/v2 header first
# proxy_sources = ["127.0.0.0/8", "::1/128"]   # only these may send one
# listen_tls = ["0.0.0.0:465"]           # implicit TLS (RFC 8314); needs [tls]
# require_tls = false                    # true: MAIL before STARTTLS gets 530 5.7.0; needs [tls]

# [downstream]                           # absent: deliver into the Maildir below
# address = "10.0.0.5:25"
# timeout = "60s"
# connect_timeout = "10s"
# idle_connections = 16                  # per worker, kept open between client sessions
# idle_timeout = "10s"                   # an idle downstream connection is closed after this
# helo = "mx.example.org"                # default: server.hostname
# tls = "opportunistic"                  # STARTTLS to the downstream: "none" | "opportunistic" | "required"
# tls_ca_file = "/etc/ssl/certs/ca-certificates.crt"   # CAs for verification; absent: the system's
# tls_name = "mailbox.example.org"       # verify its certificate for this name (always with "required")

[maildir]
path = "var/maildir"

# [spool]
# path = "/tmp"
# memory_limit = "1MiB"                  # larger messages go to an unlinked file in path

# [dns]
# servers = ["127.0.0.1:53"]             # absent: /etc/resolv.conf
# timeout = "5s"
# retries = 2

[log]
path = "-"                              # one JSON line per transaction; "-": standard output

# [tls]                                  # present: STARTTLS is offered (RFC 3207)
# certificate = "/etc/letsencrypt/live/mx.example.org/fullchain.pem"   # chain, leaf first
# key = "/etc/letsencrypt/live/mx.example.org/privkey.pem"             # SIGHUP reloads both
# min_version = "TLSv1.2"                # or "TLSv1.3"
# ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20"   # TLS 1.2; absent: OpenSSL's default
# ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"   # TLS 1.3
# [[tls.certificates]]                   # another pair: an RSA one next to an ECDSA one, or by SNI
# certificate = "/etc/mailgate/tls/rsa.pem"
# key = "/etc/mailgate/tls/rsa.key"
# names = ["mx2.example.org"]            # absent: served side by side with the main pair
# Test it: openssl s_client -starttls smtp -connect 127.0.0.1:2525; swaks --tls --server 127.0.0.1:2525

# [metrics]                              # Prometheus /metrics, /healthz, /readyz over HTTP
# listen = "127.0.0.1:9025"
# token_sha256 = "..."                   # required off loopback: sha256sum of the bearer token
                                         # (or of the password, HTTP Basic, for the history page)

# [history]                              # decisions kept in SQLite: `mailgate log --history`, and
# path = "var/history.sqlite"            # the page http://127.0.0.1:9025/history with [metrics]
# retention = "30d"                      # older decisions are deleted
# max_size = "1GiB"                      # past it, the oldest decisions are deleted first

[[stage]]
type = "size_limit"
max_bytes = "25MiB"
)";
  return text;
}

}  // namespace mailgate
