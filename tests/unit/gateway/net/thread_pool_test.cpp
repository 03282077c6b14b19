// UvJobRunner on a real loop and libuv's real pool: a job that outlives its stage timeout is
// answered as timed out and asked to stop, so its pool thread is free again at once; a job whose
// time ran out while it waited for a thread is not run at all.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <stop_token>

#include "gateway/net/thread_pool.h"

namespace mailgate {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// libuv's pool size: UV_THREADPOOL_SIZE when set, else its default of 4.
int poolThreads() {
  const char* size = std::getenv("UV_THREADPOOL_SIZE");
  return size != nullptr && std::atoi(size) > 0 ? std::atoi(size) : 4;
}

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() { uv_loop_close(&loop); }
};

// Spins until asked to stop (or for at most `longest`, so that a failing test still ends).
Verdict spinUntilStopped(std::stop_token stop, std::chrono::milliseconds longest) {
  auto until = Clock::now() + longest;
  while (!stop.stop_requested() && Clock::now() < until) {
  }
  return Verdict::proceed(stop.stop_requested() ? "stopped" : "ran out");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(thread_pool)

BOOST_AUTO_TEST_CASE(a_timed_out_job_is_asked_to_stop) {
  Loop loop;
  UvJobRunner runner(&loop.loop);
  bool answered = false;
  bool timed_out = false;
  std::atomic<bool> saw_stop{false};
  runner.submit(
      [&](std::stop_token stop) {
        Verdict verdict = spinUntilStopped(stop, 10s);
        saw_stop = stop.stop_requested();
        return verdict;
      },
      50ms,
      [&](std::optional<Verdict> verdict) {
        timed_out = !verdict;
        answered = true;
      });
  uv_run(&loop.loop, UV_RUN_DEFAULT);  // returns once the job's after-callback ran
  BOOST_TEST(answered);
  BOOST_TEST(timed_out);
  BOOST_TEST(saw_stop.load());  // it ended because it was asked to, not after its 10 s
}

BOOST_AUTO_TEST_CASE(a_job_that_timed_out_before_it_started_is_not_run) {
  Loop loop;
  UvJobRunner runner(&loop.loop);
  // Every pool thread busy until its own timeout (200 ms) asks it to stop.
  int answered = 0;
  for (int i = 0; i < poolThreads(); ++i)
    runner.submit([](std::stop_token stop) { return spinUntilStopped(stop, 10s); }, 200ms,
                  [&](std::optional<Verdict>) { ++answered; });
  std::atomic<bool> ran{false};
  std::optional<Verdict> late;
  bool late_answered = false;
  runner.submit(
      [&](std::stop_token) {
        ran = true;
        return Verdict::proceed();
      },
      20ms,
      [&](std::optional<Verdict> verdict) {
        late_answered = true;
        late = std::move(verdict);
      });
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  BOOST_TEST(answered == poolThreads());
  BOOST_TEST(late_answered);
  BOOST_TEST(!late.has_value());  // timed out
  BOOST_TEST(!ran.load());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
