#include "gateway/net/descriptor_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <thread>

namespace mailgate {

uint64_t descriptorsNeeded(const Config& config, unsigned workers) {
  const ServerConfig& server = config.server;
  uint64_t listeners = server.listen.size() + server.listen_tls.size();
  return uint64_t{server.max_connections} * descriptors_per_connection + descriptors_besides_connections +
         workers * (descriptors_per_worker + listeners);
}

unsigned workerCount(const ServerConfig& server) {
  return server.workers != 0 ? server.workers : std::max(1u, std::thread::hardware_concurrency());
}

DescriptorLimit currentDescriptorLimit(uint64_t needed) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return DescriptorLimit{needed, limit.rlim_cur, limit.rlim_cur, limit.rlim_max};
}

DescriptorLimit raiseDescriptorLimit(uint64_t needed) {
  DescriptorLimit result = currentDescriptorLimit(needed);
  uint64_t wanted = std::min(needed, result.hard);
  if (wanted <= result.soft_before) return result;
  rlimit limit{static_cast<rlim_t>(wanted), static_cast<rlim_t>(result.hard)};
  if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) result.soft = wanted;
  return result;
}

std::string descriptorShortfall(const DescriptorLimit& limit, uint32_t max_connections) {
  if (limit.hard >= limit.needed) return {};
  uint64_t overhead = limit.needed - uint64_t{max_connections} * descriptors_per_connection;
  uint64_t fit = limit.hard > overhead ? (limit.hard - overhead) / descriptors_per_connection : 0;
  return "warning: server.max_connections = " + std::to_string(max_connections) + " needs " +
         std::to_string(limit.needed) + " open files but the hard limit (RLIMIT_NOFILE) is " +
         std::to_string(limit.hard) + ": about " + std::to_string(fit) +
         " connections fit, those past it are refused with 421; raise it to " + std::to_string(limit.needed) +
         " (systemd: LimitNOFILE=" + std::to_string(limit.needed) + "; shell: ulimit -n " +
         std::to_string(limit.needed) + ") or lower server.max_connections";
}

}  // namespace mailgate
