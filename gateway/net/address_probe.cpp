#include "gateway/net/address_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "gateway/net/uv_util.h"
#include "gateway/util/file_descriptor.h"

namespace mailgate {

std::expected<void, std::string> checkAddressFree(const HostPort& address) {
  sockaddr_storage socket_address{};
  if (!socketAddress(address.host, address.port, socket_address))
    return std::unexpected(address.text() + ": not an IP address");
  FileDescriptor probe(::socket(socket_address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.get() < 0) return std::unexpected(address.text() + ": socket: " + std::strerror(errno));
  int one = 1;
  // SO_REUSEADDR as the workers set it: connections of a gateway that just stopped, left in
  // TIME_WAIT, must not count as a holder (a restart right after a stop binds at once). It never
  // lets the probe share with a listening socket.
  ::setsockopt(probe.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // As the workers bind: "[::]" and "0.0.0.0" are separate listen entries.
  if (socket_address.ss_family == AF_INET6) ::setsockopt(probe.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  socklen_t length = socket_address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(probe.get(), reinterpret_cast<sockaddr*>(&socket_address), length) == 0) return {};
  if (errno == EADDRINUSE)
    return std::unexpected(address.text() +
                           ": address in use by another process (another mailgate?); refusing to share its "
                           "connections");
  return std::unexpected(address.text() + ": bind: " + std::strerror(errno));
}

}  // namespace mailgate
