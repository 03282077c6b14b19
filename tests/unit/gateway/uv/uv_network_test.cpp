// UvNetwork on a real loop against real peers on loopback (a TCP socket and a unix socket served
// by a thread of the test): bytes go both ways with no thread waiting in the stage, a refused
// connection is reported once, and a session that ends while a stream waits for its peer closes
// it (the peer sees the end) with no callback run afterwards.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "gateway/uv/uv_network.h"

namespace mailgate {
namespace {

using namespace std::chrono_literals;

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  // Runs until `done` or a bound, so a failing test still ends.
  template <class Done>
  void runUntil(Done done, std::chrono::milliseconds bound = 5000ms) {
    auto until = std::chrono::steady_clock::now() + bound;
    while (!done() && std::chrono::steady_clock::now() < until) uv_run(&loop, UV_RUN_NOWAIT), std::this_thread::sleep_for(1ms);
  }
};

// A peer that accepts one connection, answers what it reads with "echo:" + the bytes (or keeps
// silent), and records whether it saw the connection end.
class Peer {
 public:
  static Peer tcp() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    return Peer(fd, "127.0.0.1:" + std::to_string(ntohs(address.sin_port)));
  }
  static Peer unixSocket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    return Peer(fd, path);
  }

  Peer(Peer&& other) noexcept : endpoint(std::move(other.endpoint)), listener_(std::exchange(other.listener_, -1)) {}
  ~Peer() {
    if (thread_.joinable()) thread_.join();
    if (listener_ >= 0) ::close(listener_);
  }

  void serve(bool answer) {
    ::listen(listener_, 1);
    thread_ = std::thread([this, answer] {
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      char buffer[256];
      while (true) {
        ssize_t got = ::recv(client, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        received_octets += static_cast<std::size_t>(got);
        if (answer) {
          std::string reply = "echo:" + std::string(buffer, static_cast<std::size_t>(got));
          ::send(client, reply.data(), reply.size(), MSG_NOSIGNAL);
        }
      }
      saw_end = true;
      ::close(client);
    });
  }

  // Like clamd past StreamMaxLength: reads a little, answers once and closes with the rest unread.
  void answerAndHangUp(std::string answer) {
    ::listen(listener_, 1);
    thread_ = std::thread([this, answer = std::move(answer)] {
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      char buffer[4096];
      ssize_t got = ::recv(client, buffer, sizeof buffer, 0);
      if (got > 0) received_octets += static_cast<std::size_t>(got);
      while (!may_answer) std::this_thread::sleep_for(1ms);
      ::send(client, answer.data(), answer.size(), MSG_NOSIGNAL);
      saw_end = true;
      ::close(client);
    });
  }

  std::string endpoint;
  std::atomic<std::size_t> received_octets{0};
  std::atomic<bool> saw_end{false};
  std::atomic<bool> may_answer{false};

 private:
  Peer(int fd, std::string where) : endpoint(std::move(where)), listener_(fd) {}
  int listener_;
  std::thread thread_;
};

void exchange(Peer& peer) {
  peer.serve(true);
  Loop loop;
  std::string connect_error = "not called", answer;
  bool written = false;
  {
    UvNetwork network(&loop.loop);
    std::shared_ptr<StreamConnection> stream;
    StreamCallbacks callbacks;
    callbacks.connected = [&](std::string_view error) { connect_error = error; };
    callbacks.received = [&](std::string_view bytes) { answer += bytes; };
    callbacks.closed = [](std::string_view) {};
    stream = network.connect(peer.endpoint, std::move(callbacks), 2000);
    stream->write("ping", [&] { written = true; });
    loop.runUntil([&] { return answer.size() >= 9; });
    BOOST_TEST(connect_error.empty());
    BOOST_TEST(written);
    BOOST_TEST(answer == "echo:ping");
    stream->close();
  }
  loop.runUntil([&] { return peer.saw_end.load(); });
  BOOST_TEST(peer.saw_end);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(uv_network)

BOOST_AUTO_TEST_CASE(bytes_go_both_ways_over_tcp) {
  Peer peer = Peer::tcp();
  exchange(peer);
}

BOOST_AUTO_TEST_CASE(bytes_go_both_ways_over_a_unix_socket) {
  auto path = std::filesystem::temp_directory_path() / ("mailgate-uv-network-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  {
    Peer peer = Peer::unixSocket(path.string());
    exchange(peer);
  }
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(a_refused_connection_is_reported_once) {
  std::string endpoint;
  {
    Peer closed = Peer::tcp();  // bound, never listening: the port refuses
    endpoint = closed.endpoint;
  }
  Loop loop;
  int connected_calls = 0, closed_calls = 0;
  std::string error;
  UvNetwork network(&loop.loop);
  StreamCallbacks callbacks;
  callbacks.connected = [&](std::string_view why) {
    ++connected_calls;
    error = why;
  };
  callbacks.received = [](std::string_view) {};
  callbacks.closed = [&](std::string_view) { ++closed_calls; };
  auto stream = network.connect(endpoint, std::move(callbacks), 2000);
  loop.runUntil([&] { return connected_calls > 0; });
  loop.runUntil([] { return false; }, 100ms);
  BOOST_TEST(connected_calls == 1);
  BOOST_TEST(!error.empty());
  BOOST_TEST(closed_calls == 0);
}

// The session ended (its host calls closeAll) while the stage waited for the peer's answer.
BOOST_AUTO_TEST_CASE(a_session_that_ends_mid_exchange_closes_its_streams_and_calls_nothing_more) {
  Peer peer = Peer::tcp();
  peer.serve(false);
  Loop loop;
  bool connected = false;
  int calls_after_close = 0;
  bool closing = false;
  {
    UvNetwork network(&loop.loop);
    StreamCallbacks callbacks;
    callbacks.connected = [&](std::string_view error) {
      connected = error.empty();
      calls_after_close += closing;
    };
    callbacks.received = [&](std::string_view) { calls_after_close += closing; };
    callbacks.closed = [&](std::string_view) { calls_after_close += closing; };
    auto stream = network.connect(peer.endpoint, std::move(callbacks), 2000);
    stream->write("waiting for an answer that never comes", [&] { calls_after_close += closing; });
    loop.runUntil([&] { return connected && peer.received_octets > 0; });
    BOOST_TEST(connected);
    closing = true;
    network.closeAll();
    stream->write("after close");  // the stage still holds it: a no-op, not a crash
  }
  loop.runUntil([&] { return peer.saw_end.load(); });
  BOOST_TEST(peer.saw_end);
  BOOST_TEST(calls_after_close == 0);
}

// The peer's answer is what tells why it stopped reading; a broken pipe on the next write (whose
// failure libuv reports before it polls for reading) must not hide it.
BOOST_AUTO_TEST_CASE(an_answer_sent_before_the_peer_stopped_reading_still_arrives) {
  ::signal(SIGPIPE, SIG_IGN);  // as the gateway does: a peer that closed is an EPIPE on write
  auto path = std::filesystem::temp_directory_path() / ("mailgate-uv-hangup-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  Peer peer = Peer::unixSocket(path.string());
  peer.answerAndHangUp("INSTREAM size limit exceeded. ERROR");
  Loop loop;
  std::string answer, closed_reason = "not called";
  bool closed = false, answer_before_close = false, late_write_done = false;
  {
    UvNetwork network(&loop.loop);
    StreamCallbacks callbacks;
    callbacks.connected = [](std::string_view) {};
    callbacks.received = [&](std::string_view bytes) { answer += bytes; };
    callbacks.closed = [&](std::string_view why) {
      closed = true;
      closed_reason = why;
      answer_before_close = !answer.empty();
    };
    auto stream = network.connect(peer.endpoint, std::move(callbacks), 2000);
    stream->write("first chunk");
    loop.runUntil([&] { return peer.received_octets > 0; });
    peer.may_answer = true;
    // The loop does not run while the peer answers and hangs up, so the next write meets the
    // broken pipe before the loop has read the answer.
    for (int waited = 0; !peer.saw_end && waited < 5000; ++waited) std::this_thread::sleep_for(1ms);
    BOOST_REQUIRE(peer.saw_end);
    stream->write(std::string(64 * 1024, 'x'), [&] { late_write_done = true; });
    loop.runUntil([&] { return closed; });
    stream->write("after the peer left");  // dropped, not a second failure
    loop.runUntil([] { return false; }, 50ms);
  }
  BOOST_TEST(closed);
  BOOST_TEST(answer_before_close);
  BOOST_TEST(answer == "INSTREAM size limit exceeded. ERROR");
  BOOST_TEST(!late_write_done);
  BOOST_TEST(closed_reason.find("write: broken pipe") != std::string::npos, closed_reason);
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
