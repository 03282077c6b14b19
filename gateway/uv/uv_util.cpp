#include "gateway/uv/uv_util.h"

#include <arpa/inet.h>

#include <cstring>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MAILGATE_THREAD_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MAILGATE_THREAD_SANITIZER 1
#endif
#ifdef MAILGATE_THREAD_SANITIZER
#include <sanitizer/linux_syscall_hooks.h>
// ThreadSanitizer's dynamic annotations (its runtime defines them; no header declares them).
extern "C" {
void AnnotateIgnoreReadsBegin(const char* file, int line);
void AnnotateIgnoreReadsEnd(const char* file, int line);
void AnnotateIgnoreWritesBegin(const char* file, int line);
void AnnotateIgnoreWritesEnd(const char* file, int line);
}
#endif

namespace mailgate {

void closeHandle(uv_handle_t* handle, uv_close_cb on_close) {
#ifdef MAILGATE_THREAD_SANITIZER
  // Announced before uv_close frees the number (after it, another loop's accept may already hold
  // it); uv_close's own epoll_ctl(EPOLL_CTL_DEL) on the descriptor is then kept out of TSan's
  // view, or it would be taken for a use of the next owner's descriptor.
  // Only the types whose descriptor uv_close closes: a poll handle's stays open, its owner's.
  uv_handle_type type = uv_handle_get_type(handle);
  bool closes_descriptor = type == UV_TCP || type == UV_NAMED_PIPE || type == UV_UDP || type == UV_TTY;
  uv_os_fd_t descriptor = -1;
  if (closes_descriptor && !uv_is_closing(handle) && uv_fileno(handle, &descriptor) == 0)
    __sanitizer_syscall_pre_close(descriptor);
  AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
  AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  uv_close(handle, on_close);
  AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
  AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#else
  uv_close(handle, on_close);
#endif
}

PeerAddress peerOf(const sockaddr_storage& address) {
  PeerAddress peer;
  char text[INET6_ADDRSTRLEN] = {0};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    peer.port = ntohs(v4->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, sizeof text);
    } else {
      inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    }
    peer.port = ntohs(v6->sin6_port);
  }
  peer.ip = text;
  return peer;
}

bool peerAddress(const uv_tcp_t* tcp, PeerAddress& peer) {
  sockaddr_storage address{};
  int length = sizeof address;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&address), &length) != 0) return false;
  peer = peerOf(address);
  return true;
}

bool socketAddress(const std::string& host, uint16_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return true;
  }
  return false;
}

void writeAtOnce(uv_stream_t* stream, std::string& bytes) {
  if (bytes.empty()) return;
  uv_buf_t buffer = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
  int written = uv_try_write(stream, &buffer, 1);
  if (written > 0) bytes.erase(0, static_cast<std::size_t>(written));
}

}  // namespace mailgate
