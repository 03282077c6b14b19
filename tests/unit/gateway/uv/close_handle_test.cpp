// closeHandle closes a handle's descriptor, and in the ThreadSanitizer build the sanitizer knows
// it: a worker's loop connects a socket (epoll_ctl, connect: accesses TSan records against the
// number) and closes it; the test's thread, with nothing that orders it after the worker, opens a
// directory, is handed the same number and closes it. With libuv's close unseen (plain uv_close),
// TSan reports that close as a race with the worker's socket (the CI failure of 3385500).
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <thread>

#include "gateway/uv/uv_util.h"

namespace mailgate {
namespace {

BOOST_AUTO_TEST_SUITE(close_handle)

BOOST_AUTO_TEST_CASE(a_closed_socket_s_number_is_free_for_another_thread) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  ::listen(listener, 1);

  // Relaxed on purpose: nothing here may order the two threads for the sanitizer.
  std::atomic<int> closed_number{-1};
  std::atomic<bool> may_end{false};
  std::thread worker([&] {
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t tcp;
    uv_tcp_init(&loop, &tcp);
    uv_connect_t connect;
    uv_tcp_connect(&connect, &tcp, reinterpret_cast<const sockaddr*>(&address),
                   [](uv_connect_t*, int) {});
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_os_fd_t number = -1;
    uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp), &number);
    closeHandle(reinterpret_cast<uv_handle_t*>(&tcp), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    closed_number.store(number, std::memory_order_relaxed);
    while (!may_end.load(std::memory_order_relaxed)) std::this_thread::yield();
    uv_loop_close(&loop);
  });

  while (closed_number.load(std::memory_order_relaxed) < 0) std::this_thread::yield();
  // The loop's own descriptors stay open, so the lowest free number is the socket's.
  DIR* directory = ::opendir("/");
  BOOST_REQUIRE(directory != nullptr);
  int reused = ::dirfd(directory);
  ::closedir(directory);
  may_end.store(true, std::memory_order_relaxed);
  worker.join();
  ::close(listener);
  BOOST_CHECK_EQUAL(reused, closed_number.load());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate
