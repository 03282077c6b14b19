#include "gateway/server.h"

#include <uv.h>

#include <pthread.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include <unistd.h>

#include "filters/builtin_stages.h"
#include "gateway/dns/dns_counters.h"
#include "gateway/history/history_writer.h"
#include "gateway/metrics/downstream_probe.h"
#include "gateway/metrics/http_endpoint.h"
#include "gateway/net/address_probe.h"
#include "gateway/net/descriptor_limit.h"
#include "gateway/net/shared_state.h"
#include "gateway/net/worker.h"

namespace mailgate {
namespace {

// libuv's pool runs every blocking job (DNS-bound stage checks, Maildir fsyncs); its default of 4
// threads would let four slow DNS lookups stall every other session's checks. Each sender whose
// DNS hangs holds one thread until dns.timeout; 128 such senders at once before others wait.
constexpr const char* default_thread_pool_size = "128";

struct Snapshot {
  std::shared_ptr<const Runtime> runtime;
  std::shared_ptr<const ServerTls> tls;  // null without [tls]
};

// The pipeline built from the configuration, the snapshot around it, and the certificates: all
// or nothing, so a reload whose renewed certificate does not load leaves the old one in force.
std::expected<Snapshot, std::vector<std::string>> makeRuntime(Config config) {
  std::vector<std::string> errors = checkTlsFiles(config);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  std::shared_ptr<const ServerTls> tls;
  if (config.tls) {
    auto loaded = ServerTls::load(*config.tls);
    if (!loaded) return std::unexpected(std::vector<std::string>{loaded.error()});
    tls = std::move(*loaded);
  }
  auto pipeline = buildPipeline(config);
  if (!pipeline) {
    for (const auto& error : pipeline.error()) errors.push_back(error.text());
    return std::unexpected(std::move(errors));
  }
  auto runtime = Runtime::make(std::move(config), std::move(*pipeline));
  if (!runtime) return std::unexpected(std::vector<std::string>{runtime.error()});
  return Snapshot{*runtime, std::move(tls)};
}

// How often records dropped by a stuck decision log are reported on standard error: while the log
// is stuck the operator hears of it, without a line per record.
constexpr uint64_t log_overflow_report_ms = 10'000;

// The signals the gateway acts on (README "Running it for real"). SIGXCPU is a soft RLIMIT_CPU saying "clean
// up before SIGKILL": it drains like SIGTERM.
constexpr std::array handled_signals{SIGTERM, SIGINT, SIGXCPU, SIGHUP, SIGUSR1};

// Signals whose default would end the process at once, without draining, and that an operator,
// a library or a system may send: ignored. SIGPIPE: a peer that closed is an EPIPE on write.
// SIGXFSZ: a log past RLIMIT_FSIZE is an EFBIG (counted as dropped records). The fault signals
// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS) keep their core dump, and so does
// SIGQUIT: the operator's deliberate "dump core now" for a hung gateway.
constexpr std::array ignored_signals{SIGPIPE, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT, SIGXFSZ};

void ignoreStraySignals() {
  for (int signal_number : ignored_signals) std::signal(signal_number, SIG_IGN);
  for (int signal_number = SIGRTMIN; signal_number <= SIGRTMAX; ++signal_number) std::signal(signal_number, SIG_IGN);
}

struct Controller {
  SharedState* shared;
  std::vector<std::unique_ptr<Worker>>* workers;
  std::optional<std::string> config_path;
  Duration shutdown_timeout;
  std::array<uv_signal_t, handled_signals.size()> signals{};
  uv_timer_t overflow_report{};
  // Signals stay handled until every worker is done (libuv restores a signal's default when its
  // last handle closes, and a SIGUSR1 from logrotate must not kill a draining gateway); a thread
  // joins the workers and wakes the loop through this.
  uv_async_t workers_done{};
  std::thread joiner{};
  uint64_t reported_drops = 0;
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
  controller.shared->replace(std::move(runtime->runtime), std::move(runtime->tls));
  std::fprintf(stderr, "mailgate: configuration reloaded from %s\n", controller.config_path->c_str());
}

// Log rotation: records queued so far go to the file that was open, the rest to log.path as it is
// now (the configuration in force, which a reload may just have changed).
void reopenLog(Controller& controller) {
  std::string path = controller.shared->runtime()->config->log.path;
  controller.shared->log().reopen(path);
  std::fprintf(stderr, "mailgate: reopening the decision log %s\n", path.c_str());
}

void reportLogOverflow(Controller& controller) {
  uint64_t dropped = controller.shared->log().dropped();
  if (dropped == controller.reported_drops) return;
  std::fprintf(stderr,
               "mailgate: decision log %s: %llu records dropped (%llu since start): the log does not take "
               "records as fast as they come (queue full) or cannot be written\n",
               controller.shared->log().path().c_str(),
               static_cast<unsigned long long>(dropped - controller.reported_drops),
               static_cast<unsigned long long>(dropped));
  controller.reported_drops = dropped;
}

void finish(Controller& controller) {
  for (auto& signal : controller.signals) uv_close(reinterpret_cast<uv_handle_t*>(&signal), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&controller.overflow_report), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&controller.workers_done), nullptr);
}

void stop(Controller& controller) {
  if (controller.stopping) return;
  controller.stopping = true;
  std::fprintf(stderr, "mailgate: stopping: finishing transactions in flight (at most %lld ms)\n",
               static_cast<long long>(controller.shutdown_timeout.count()));
  for (auto& worker : *controller.workers) worker->drain(controller.shutdown_timeout);
  controller.joiner = std::thread([&controller] {
    for (auto& worker : *controller.workers) worker->join();
    uv_async_send(&controller.workers_done);
  });
}

void onSignal(uv_signal_t* handle, int signal_number) {
  Controller& controller = *static_cast<Controller*>(handle->data);
  if (signal_number == SIGHUP) {
    reload(controller);
    reopenLog(controller);
  } else if (signal_number == SIGUSR1) {
    reopenLog(controller);
  } else {
    stop(controller);
  }
}

}  // namespace

int runServer(Config config, std::optional<std::string> config_path) {
  ignoreStraySignals();
  // Until the handlers below are in place, the handled signals wait instead of killing the process
  // (a supervisor may signal as soon as the port answers); worker threads inherit the mask, so
  // only this thread ever takes them.
  sigset_t handled;
  sigemptyset(&handled);
  for (int signal_number : handled_signals) sigaddset(&handled, signal_number);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  setenv("UV_THREADPOOL_SIZE", default_thread_pool_size, 0);

  auto runtime = makeRuntime(std::move(config));
  if (!runtime) {
    for (const auto& error : runtime.error()) std::fprintf(stderr, "mailgate: %s\n", error.c_str());
    return 1;
  }
  const Config& current = *runtime->runtime->config;
  std::vector<HostPort> all_addresses = current.server.listen;
  all_addresses.insert(all_addresses.end(), current.server.listen_tls.begin(), current.server.listen_tls.end());
  for (const auto& address : all_addresses) {
    if (auto free = checkAddressFree(address); !free) {
      std::fprintf(stderr, "mailgate: cannot listen on %s\n", free.error().c_str());
      return 1;
    }
  }
  auto log = DecisionLog::open(current.log.path);
  if (!log) {
    std::fprintf(stderr, "mailgate: %s\n", log.error().c_str());
    return 1;
  }

  // [history] is read at start only, as [metrics] is: a reload does not move the file.
  std::shared_ptr<HistoryWriter> history;
  if (current.history) {
    auto started = HistoryWriter::start(*current.history);
    if (!started) {
      std::fprintf(stderr, "mailgate: %s\n", started.error().c_str());
      return 1;
    }
    history = std::move(*started);
    (*log)->setTap(history);
  }

  // Before the first connection: a soft limit below what max_connections needs would refuse
  // clients long before it (README "Many connections"). [server] is read at start only for this:
  // a reload that raises max_connections past the limit gets connections refused with 421.
  unsigned count = workerCount(current.server);
  DescriptorLimit limit = raiseDescriptorLimit(descriptorsNeeded(current, count));
  if (std::string shortfall = descriptorShortfall(limit, current.server.max_connections); !shortfall.empty())
    std::fprintf(stderr, "mailgate: %s\n", shortfall.c_str());

  SharedState shared(runtime->runtime, runtime->tls, std::move(*log));
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned index = 0; index < count; ++index) {
    auto worker = std::make_unique<Worker>(index, shared);
    for (bool implicit_tls : {false, true}) {
      if (auto listening = worker->listen(implicit_tls ? current.server.listen_tls : current.server.listen, implicit_tls);
          !listening) {
        std::fprintf(stderr, "mailgate: cannot listen on %s\n", listening.error().c_str());
        return 1;
      }
    }
    workers.push_back(std::move(worker));
  }
  // [metrics] is read at start only: a reload does not move the listener.
  std::unique_ptr<DownstreamProbe> probe;
  std::unique_ptr<HttpEndpoint> endpoint;
  if (current.metrics) {
    HttpEndpoint::Readiness readiness;
    if (current.downstream.address) {
      probe = std::make_unique<DownstreamProbe>(*current.downstream.address);
      readiness = [checker = probe.get()] { return checker->ready() ? std::string() : checker->lastProblem(); };
    } else {
      // The embedded Maildir: ready while its folder takes files.
      readiness = [path = current.maildir.path] {
        return ::access(path.c_str(), W_OK | X_OK) == 0 ? std::string() : "Maildir " + path + " is not writable";
      };
    }
    shared.metrics().readDroppedRecordsFrom([&shared] { return shared.log().dropped(); });
    shared.metrics().readDnsCountsFrom([] {
      DnsCounts counts = dnsCounts();
      return std::pair{counts.questions, counts.cache_hits};
    });
    if (history)
      shared.metrics().readHistoryCountsFrom([writer = history.get()] { return std::pair{writer->stored(), writer->dropped()}; });
    auto started = HttpEndpoint::start(*current.metrics, shared.metrics(), std::move(readiness),
                                       current.history ? current.history->path : std::string());
    if (!started) {
      std::fprintf(stderr, "mailgate: %s\n", started.error().c_str());
      return 1;
    }
    endpoint = std::move(*started);
    std::fprintf(stderr, "mailgate: metrics on http://%s/metrics\n", current.metrics->listen.text().c_str());
  }
  for (auto& worker : workers) worker->start();

  std::string addresses;
  for (const auto& address : current.server.listen) addresses += (addresses.empty() ? "" : ", ") + address.text();
  for (const auto& address : current.server.listen_tls) addresses += ", " + address.text() + " (implicit TLS)";
  std::fprintf(stderr, "mailgate %s: listening on %s with %u workers; %s; config %s\n", MAILGATE_VERSION,
               addresses.c_str(), count,
               current.downstream.address ? ("relaying to " + current.downstream.address->text()).c_str()
                                          : ("delivering into Maildir " + current.maildir.path).c_str(),
               current.source.c_str());

  Controller controller{&shared, &workers, std::move(config_path), current.server.shutdown_timeout};
  uv_loop_t* loop = uv_default_loop();
  for (std::size_t index = 0; index < handled_signals.size(); ++index) {
    uv_signal_t& signal = controller.signals[index];
    uv_signal_init(loop, &signal);
    signal.data = &controller;
    uv_signal_start(&signal, onSignal, handled_signals[index]);
  }
  uv_timer_init(loop, &controller.overflow_report);
  controller.overflow_report.data = &controller;
  uv_timer_start(
      &controller.overflow_report,
      [](uv_timer_t* timer) { reportLogOverflow(*static_cast<Controller*>(timer->data)); },
      log_overflow_report_ms, log_overflow_report_ms);
  uv_async_init(loop, &controller.workers_done,
                [](uv_async_t* async) { finish(*static_cast<Controller*>(async->data)); });
  controller.workers_done.data = &controller;
  pthread_sigmask(SIG_UNBLOCK, &handled, nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
  if (controller.joiner.joinable()) controller.joiner.join();
  for (auto& worker : workers) worker->join();
  endpoint.reset();  // serves /healthz until the workers are done
  workers.clear();
  uv_loop_close(loop);
  // The last records (those of the drain) reach the log before the process exits; a log still
  // stuck after the bound loses them, counted in the report below.
  shared.log().stop(DecisionLog::exit_drain_bound);
  if (history) {
    history->stop(DecisionLog::exit_drain_bound);
    if (history->dropped() > 0)
      std::fprintf(stderr, "mailgate: history %s: %llu records not stored (the log file has them)\n",
                   current.history->path.c_str(), static_cast<unsigned long long>(history->dropped()));
  }
  reportLogOverflow(controller);
  std::fprintf(stderr, "mailgate: stopped\n");
  return 0;
}

}  // namespace mailgate
