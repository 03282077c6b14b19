#pragma once
// Small helpers around libuv handles. A handle lives inside its owner (design.md §5): uv_close it
// first, free the owner only in the close callback.

#include <uv.h>

#include <cstdint>
#include <string>

namespace mailgate {

// One uv_write with the bytes it owns; request.data points back to it, and it is freed in the
// write callback. `owner` is the object that issued the write.
struct WriteRequest {
  uv_write_t request;
  std::string bytes;
  void* owner = nullptr;
};

// Writes what the socket takes at once and drops it from `bytes`; what is left goes through
// uv_write. uv_write alone would cost a request and, on the libuv Debian ships, two epoll_ctl
// calls per reply (POLLOUT on, then off): strace showed one after every one-line reply. Nothing
// is written while earlier uv_writes are queued (uv_try_write says EAGAIN), so order is kept. On
// an error nothing is dropped: uv_write then reports it through its callback, on a later turn
// of the loop, so a broken socket is never noticed inside the caller's own call.
void writeAtOnce(uv_stream_t* stream, std::string& bytes);

// uv_close for a handle that may own a descriptor (TCP, pipe, UDP, poll). libuv closes descriptors
// with syscall(SYS_close), which ThreadSanitizer does not intercept; when another thread is then
// handed the same number (a reload opening a certificate), TSan takes the old socket's accesses
// for a race with the new file's. The TSan build tells the sanitizer of the close, as libuv
// itself does when it is built with TSan; other builds call uv_close and nothing else.
void closeHandle(uv_handle_t* handle, uv_close_cb on_close);

// Address and port of a sockaddr, for logs: ("192.0.2.1", 25); IPv4-mapped IPv6 is shown as IPv4.
struct PeerAddress {
  std::string ip;
  uint16_t port = 0;
};
PeerAddress peerOf(const sockaddr_storage& address);
bool peerAddress(const uv_tcp_t* tcp, PeerAddress& peer);

// Parses an IP literal and port into a sockaddr; false when `host` is not an IP literal.
bool socketAddress(const std::string& host, uint16_t port, sockaddr_storage& out);

}  // namespace mailgate
