#pragma once
// The gateway's configuration (design.md §6). Every key an operator can write is a field here with
// its default; loadConfig() validates a TOML file into it and names file:line and the key on error.

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/pipeline/stage_mode.h"
#include "gateway/util/duration.h"

namespace mailgate {


struct HostPort {
  std::string host;  // "127.0.0.1", "::1", "0.0.0.0", "::" or a name (downstream only)
  uint16_t port = 0;
  std::string text() const;  // "127.0.0.1:25", "[::1]:25"
};

// One problem found in a config file. `line` is 0 when the problem has no place in the file.
struct ConfigError {
  std::string file;
  unsigned line = 0;
  std::string key;  // dotted path: "server.max_recipients", "stage[2].max_bytes"
  std::string message;
  std::string text() const;  // "mailgate.toml:12: server.max_recipients: must be at least 1"
};

// Typed, checked access to one TOML table (a [[stage]] table is handed to its stage's factory as
// one of these). Every getter records the key as known; finish() reports the keys nobody asked
// for, so a typo is an error, not a silently ignored setting. Errors accumulate; check ok().
class Settings {
 public:
  ~Settings();
  Settings(Settings&&) noexcept;
  Settings& operator=(Settings&&) noexcept;

  std::optional<std::string> string(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max);
  std::optional<double> number(std::string_view key);  // integer or float
  std::optional<uint64_t> size(std::string_view key);  // 1048576 or "1MiB", "25MB", "512KiB", "1GiB"
  std::optional<Duration> duration(std::string_view key);  // 30 (seconds) or "30s", "5m", "1h", "250ms"
  std::optional<std::vector<std::string>> strings(std::string_view key);  // array of strings
  std::optional<HostPort> hostPort(std::string_view key, uint16_t default_port);
  std::optional<std::vector<HostPort>> hostPorts(std::string_view key, uint16_t default_port);

  // Reports a problem with `key`'s value (the getter already reports type errors).
  void fail(std::string_view key, std::string message);
  // Reports unknown keys; returns all errors found so far.
  std::vector<ConfigError> finish();
  bool ok() const;
  std::string path() const;  // "stage[2]" or "server", for messages

 private:
  friend class ConfigLoader;
  struct Impl;
  explicit Settings(std::unique_ptr<Impl> impl);

  // For the loader, so that only settings.cpp sees toml++: the whole document, its tables and
  // arrays of tables ([[stage]]), problems with one entry of an array, and the errors so far
  // without the unknown-key check (a stage's keys are checked later, by its factory).
  static std::expected<Settings, ConfigError> parse(std::string_view toml_text, const std::string& source);
  std::optional<Settings> table(std::string_view key);  // absent: nullopt; not a table: error
  std::vector<Settings> tables(std::string_view key);   // each with path "key[N]"
  void failEntry(std::string_view key, size_t index, std::string message);
  const std::vector<ConfigError>& errors() const;

  std::unique_ptr<Impl> impl_;
};


// One [[stage]] table as written: type and mode are read by the loader, the rest by the stage.
struct StageSpec {
  std::string type;
  StageMode mode = StageMode::Enforce;
  unsigned index = 0;  // position among the [[stage]] tables, from 0
  std::shared_ptr<Settings> settings;
};

struct ServerConfig {
  std::vector<HostPort> listen{{"127.0.0.1", 2525}};
  std::string hostname = "localhost";
  std::vector<std::string> domains{"localhost", "localhost.localdomain"};
  // Whether mail for `domain` (any case) is accepted: never an open relay.
  bool servesDomain(std::string_view domain) const;
  uint32_t max_recipients = 100;
  uint32_t max_connections = 10000;
  uint32_t max_connections_per_client = 50;
  Duration idle_timeout = std::chrono::minutes(5);
  Duration command_timeout = std::chrono::minutes(5);
  Duration shutdown_timeout = std::chrono::seconds(30);
  unsigned workers = 0;  // 0: one per core
  bool proxy_protocol = false;
  std::vector<std::string> proxy_sources{"127.0.0.0/8", "::1/128"};
  // RFC 8314 implicit TLS (port 465): TLS from the first byte, no STARTTLS. Needs [tls].
  std::vector<HostPort> listen_tls;
  // MAIL before STARTTLS is refused with 530 5.7.0 (RFC 3207 §4). Needs [tls].
  bool require_tls = false;
};

// STARTTLS to the downstream: never; when the server offers it (the default); or always, with a
// 4xx to the client and nothing delivered when it cannot be had.
enum class DownstreamTls { None, Opportunistic, Required };

struct DownstreamConfig {
  std::optional<HostPort> address;  // absent: deliver into the embedded Maildir
  Duration timeout = std::chrono::seconds(60);
  Duration connect_timeout = std::chrono::seconds(10);
  // Connections kept open per worker after a client session ends, for the next session: saves
  // the connect, greeting and EHLO round trips (Postfix's connection cache does the same).
  uint32_t idle_connections = 16;
  // Shorter than a mailbox server's own idle timeout (Postfix: 300s), so the gateway is the one
  // that closes.
  Duration idle_timeout = std::chrono::seconds(10);
  std::string helo;  // empty: server.hostname
  DownstreamTls tls = DownstreamTls::Opportunistic;
  std::string tls_ca_file;  // trust anchors for verification; empty: the system's
  // The name the downstream's certificate must carry; when set (or with tls = "required") the
  // certificate is verified. Empty with "required": the host of `address`.
  std::string tls_name;
};

struct MaildirConfig {
  std::string path = "var/maildir";
};

struct SpoolConfig {
  std::string path = "/tmp";
  uint64_t memory_limit = 1024 * 1024;
};

struct DnsConfig {
  std::vector<HostPort> servers;  // empty: /etc/resolv.conf
  Duration timeout = std::chrono::seconds(5);
  unsigned retries = 2;
};

struct LogConfig {
  std::string path = "-";  // "-": standard output
};

// A further certificate/key pair: another key type served side by side with the main pair
// (no names), or the pair for the names a client asks for with SNI.
struct TlsCertificateConfig {
  std::string certificate;
  std::string key;
  std::vector<std::string> names;  // "mx2.example.org", "*.example.org"
};

struct TlsConfig {
  std::string certificate;  // PEM chain, leaf first
  std::string key;
  std::vector<TlsCertificateConfig> certificates;
  std::string min_version = "TLSv1.2";  // or "TLSv1.3"
  std::string ciphers;       // TLS 1.2 cipher list, OpenSSL syntax; empty: OpenSSL's default
  std::string ciphersuites;  // TLS 1.3 suites; empty: OpenSSL's default
};

// The decision history (gateway/history/): every record also kept in SQLite, for `mailgate log
// --history` and the web page of [metrics]. Absent: no history.
struct HistoryConfig {
  std::string path;                                    // the SQLite file, created when missing
  Duration retention = std::chrono::hours(24 * 30);    // older decisions are deleted
  uint64_t max_size = uint64_t{1} << 30;               // past it, the oldest decisions go first
};

struct MetricsConfig {
  HostPort listen;
  std::string token_sha256;  // lower-case hex; empty: no token asked for (loopback only)
};

struct Config {
  std::string source;  // file it came from, or "<embedded default>"
  ServerConfig server;
  DownstreamConfig downstream;
  MaildirConfig maildir;
  SpoolConfig spool;
  DnsConfig dns;
  LogConfig log;
  std::optional<TlsConfig> tls;
  std::optional<MetricsConfig> metrics;
  std::optional<HistoryConfig> history;
  std::vector<StageSpec> stages;
  // What the loader decided in the operator's place, to be said where the config is checked or
  // started: "no [[stage]]: using the default size_limit of 25 MiB".
  std::vector<std::string> notices;
};

// Reads and validates `path`. Stage tables are checked for `type` and `mode` only; their other keys
// are checked when the pipeline is built from them (buildPipeline), which reports through the
// same ConfigError type. Without any [[stage]] table the pipeline is the default one size_limit
// of 25 MiB (and a notice says so): no configuration runs without a bound on message size.
std::expected<Config, std::vector<ConfigError>> loadConfig(const std::string& path);
// Same, from TOML text (for tests and the embedded default); `source` names it in errors.
std::expected<Config, std::vector<ConfigError>> parseConfig(std::string_view toml_text,
                                                            const std::string& source);
// The configuration used when no file is given: listen on 127.0.0.1:2525, deliver into
// ./var/maildir, one size_limit stage of 25 MiB.
Config embeddedDefaultConfig();
std::string_view embeddedDefaultConfigText();

// Value parsers shared with the command line. Sizes: bytes or "<n><unit>" with B, KB, MB, GB
// (powers of 1000), KiB, MiB, GiB (powers of 1024), case-insensitive. Durations: seconds or
// "<n><unit>" with ms, s, m, h, d.
std::expected<uint64_t, std::string> parseSize(std::string_view text);
std::expected<Duration, std::string> parseDuration(std::string_view text);
std::expected<HostPort, std::string> parseHostPort(std::string_view text, uint16_t default_port);

}  // namespace mailgate
