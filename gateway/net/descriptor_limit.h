#pragma once
// The open-file limit (RLIMIT_NOFILE) the gateway needs for server.max_connections clients at
// once, raised at start as far as the hard limit allows (README "Many connections"). Every
// client holds a socket, and while its transaction is relayed a downstream connection too; a
// soft limit below that makes accept fail with EMFILE long before max_connections.

#include <cstdint>
#include <string>

#include "gateway/config/config.h"

namespace mailgate {

// The client's socket and, while its transaction is delivered, the downstream connection (or the
// Maildir file the message is written to).
inline constexpr uint64_t descriptors_per_connection = 2;
// Per worker: its loop's epoll instance and wakeup eventfd, the spare libuv keeps for EMFILE, the
// spare the worker keeps to answer 421 when descriptors run out; and one per listen address.
inline constexpr uint64_t descriptors_per_worker = 4;
// Everything else, whatever the connection count: standard streams, the main loop and its signal
// pipe, the decision log, the history database (file, journal, WAL and its index), the metrics
// listener and its clients, the resolver's sockets, clamd streams (64 at most by default) and a
// file or socket for each of the 128 thread-pool threads (Maildir files, blocking DNS lookups).
inline constexpr uint64_t descriptors_besides_connections = 256;

// Descriptors `config` needs with `workers` event loops, every connection slot in use.
uint64_t descriptorsNeeded(const Config& config, unsigned workers);

// Worker loops the server runs for `server` (server.workers, 0: one per CPU).
unsigned workerCount(const ServerConfig& server);

struct DescriptorLimit {
  uint64_t needed = 0;
  uint64_t soft_before = 0;  // the soft limit the process was started with
  uint64_t soft = 0;         // the soft limit now
  uint64_t hard = 0;
};

// Raises the soft limit to `needed`, or to the hard limit when that is lower; never lowers it.
DescriptorLimit raiseDescriptorLimit(uint64_t needed);

// The process's limits now, without changing them (--check-config).
DescriptorLimit currentDescriptorLimit(uint64_t needed);

// Empty when the hard limit allows `needed`; else one line naming the figures, about how many
// connections fit, and the fix (systemd LimitNOFILE=, ulimit -n).
std::string descriptorShortfall(const DescriptorLimit& limit, uint32_t max_connections);

}  // namespace mailgate
