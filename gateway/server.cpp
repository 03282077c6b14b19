#include "gateway/server.h"

#include <uv.h>

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "gateway/net/shared_state.h"
#include "gateway/net/worker.h"

namespace mailgate {
namespace {

// libuv's pool runs every blocking job (DNS-bound stage checks, Maildir fsyncs); its default of 4
// threads would let four slow DNS lookups stall every other session's checks. Each sender whose
// DNS hangs holds one thread until dns.timeout; 128 such senders at once before others wait.
constexpr const char* default_thread_pool_size = "128";

struct Controller {
  SharedState* shared;
  std::vector<std::unique_ptr<Worker>>* workers;
  std::optional<std::string> config_path;
  Duration shutdown_timeout;
  uv_signal_t term{}, interrupt{}, hangup{};
  bool stopping = false;
};

void reload(Controller& controller) {
  if (!controller.config_path) {
    std::fprintf(stderr, "mailgate: SIGHUP: running on the embedded default, nothing to reload\n");
    return;
  }
  auto config = loadConfig(*controller.config_path);
  if (!config) {
    for (const auto& error : config.error()) std::fprintf(stderr, "mailgate: reload refused: %s\n", error.text().c_str());
    return;
  }
  auto runtime = makeRuntime(std::move(*config));
  if (!runtime) {
    for (const auto& error : runtime.error()) std::fprintf(stderr, "mailgate: reload refused: %s\n", error.c_str());
    return;
  }
  controller.shared->replace(std::move(*runtime));
  std::fprintf(stderr, "mailgate: configuration reloaded from %s\n", controller.config_path->c_str());
}

void stop(Controller& controller) {
  if (controller.stopping) return;
  controller.stopping = true;
  std::fprintf(stderr, "mailgate: stopping: finishing transactions in flight (at most %lld ms)\n",
               static_cast<long long>(controller.shutdown_timeout.count()));
  for (auto& worker : *controller.workers) worker->drain(controller.shutdown_timeout);
  for (uv_signal_t* signal : {&controller.term, &controller.interrupt, &controller.hangup})
    uv_close(reinterpret_cast<uv_handle_t*>(signal), nullptr);
}

}  // namespace

int runServer(Config config, std::optional<std::string> config_path) {
  std::signal(SIGPIPE, SIG_IGN);
  // Until the handlers below are in place, SIGTERM/SIGHUP wait instead of killing the process
  // (a supervisor may signal as soon as the port answers); worker threads inherit the mask, so
  // only this thread ever takes them.
  sigset_t handled;
  sigemptyset(&handled);
  for (int signal_number : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled, signal_number);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  setenv("UV_THREADPOOL_SIZE", default_thread_pool_size, 0);

  auto runtime = makeRuntime(std::move(config));
  if (!runtime) {
    for (const auto& error : runtime.error()) std::fprintf(stderr, "mailgate: %s\n", error.c_str());
    return 1;
  }
  const Config& current = *(*runtime)->config;
  auto log = DecisionLog::open(current.log.path);
  if (!log) {
    std::fprintf(stderr, "mailgate: %s\n", log.error().c_str());
    return 1;
  }

  SharedState shared(*runtime, std::move(*log));
  unsigned count = current.server.workers != 0 ? current.server.workers : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned index = 0; index < count; ++index) {
    auto worker = std::make_unique<Worker>(index, shared);
    if (auto listening = worker->listen(current.server.listen); !listening) {
      std::fprintf(stderr, "mailgate: cannot listen on %s\n", listening.error().c_str());
      return 1;
    }
    workers.push_back(std::move(worker));
  }
  for (auto& worker : workers) worker->start();

  std::string addresses;
  for (const auto& address : current.server.listen) addresses += (addresses.empty() ? "" : ", ") + address.text();
  std::fprintf(stderr, "mailgate %s: listening on %s with %u workers; %s; config %s\n", MAILGATE_VERSION,
               addresses.c_str(), count,
               current.downstream.address ? ("relaying to " + current.downstream.address->text()).c_str()
                                          : ("delivering into Maildir " + current.maildir.path).c_str(),
               current.source.c_str());

  Controller controller{&shared, &workers, std::move(config_path), current.server.shutdown_timeout};
  uv_loop_t* loop = uv_default_loop();
  for (uv_signal_t* signal : {&controller.term, &controller.interrupt, &controller.hangup}) {
    uv_signal_init(loop, signal);
    signal->data = &controller;
  }
  auto on_stop = [](uv_signal_t* signal, int) { stop(*static_cast<Controller*>(signal->data)); };
  uv_signal_start(&controller.term, on_stop, SIGTERM);
  uv_signal_start(&controller.interrupt, on_stop, SIGINT);
  uv_signal_start(&controller.hangup, [](uv_signal_t* signal, int) { reload(*static_cast<Controller*>(signal->data)); },
                  SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &handled, nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
  for (auto& worker : workers) worker->join();
  workers.clear();
  uv_loop_close(loop);
  std::fprintf(stderr, "mailgate: stopped\n");
  return 0;
}

}  // namespace mailgate
