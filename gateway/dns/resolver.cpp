#include "gateway/dns/resolver.h"

#include "gateway/dns/dns_counters.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "gateway/c/unbound.h"
#include "gateway/dns/answer_cache.h"
#include "gateway/util/c_free.h"

namespace mailgate {
namespace {

using UbContext = std::unique_ptr<ub_ctx, CFree<&ub_ctx_delete>>;
using UbResult = std::unique_ptr<ub_result, CFree<&ub_resolve_free>>;

constexpr int class_in = 1;  // RFC 1035 §3.2.4
// libunbound's library default is 16 UDP ports, i.e. 16 queries on the wire at once; the thread
// pool runs more SPF/DKIM lookups than that at busy times, and the rest would queue behind them.
constexpr const char* outgoing_udp_ports = "256";

// One query in flight: the caller waits on `answered`, the dispatcher thread fills it in.
struct Pending {
  std::mutex mutex;
  std::condition_variable done;
  bool answered = false;
  int error = 0;
  UbResult result;
};
// What libunbound's callback argument points to: a heap-allocated reference to the Pending, so
// that the Pending outlives a caller that gave up (see Resolver::query for who frees it).
using Ticket = std::shared_ptr<Pending>;

// Runs on the dispatcher thread, inside ub_process().
void onAnswer(void* argument, int error, ub_result* result) noexcept {
  std::unique_ptr<Ticket> ticket(static_cast<Ticket*>(argument));
  UbResult owned(result);
  Pending& pending = **ticket;
  {
    std::lock_guard lock(pending.mutex);
    pending.error = error;
    pending.result = std::move(owned);
    pending.answered = true;
  }
  pending.done.notify_one();
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string unboundError(std::string_view what, int code) {
  return std::string(what) + ": " + ub_strerror(code);
}

// RFC 1035 §2.3.4 limits, checked here so that a hostile name (from an SPF record, a DKIM
// signature) is refused before it costs a query. Text length without the final dot: 253 octets
// make a 255-octet wire name.
constexpr std::size_t max_label_octets = 63;
constexpr std::size_t max_name_octets = 253;

bool plainNameOctet(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '*';
}

// The name in the text form ub_resolve_async() parses (RFC 1035 §5.1): every octet that is not a
// letter, digit, '-', '_' or '*' is written as \DDD, so that a backslash or a space in the name is
// asked for as that octet and never read as an escape. A final dot is optional.
std::expected<std::string, std::string> presentationName(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  if (name.empty()) return std::unexpected("empty name");
  if (name.size() > max_name_octets) return std::unexpected("name longer than 253 octets");
  std::string text;
  std::size_t label = 0;
  for (unsigned char c : name) {
    if (c == '.') {
      if (label == 0) return std::unexpected("empty label in name");
      label = 0;
      text += '.';
      continue;
    }
    if (++label > max_label_octets) return std::unexpected("label longer than 63 octets");
    if (plainNameOctet(c)) {
      text += static_cast<char>(c);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\%03u", c);
      text += escaped;
    }
  }
  if (label == 0) return std::unexpected("empty label in name");
  return text + '.';
}

std::string rcodeText(int rcode) {
  switch (rcode) {  // RFC 1035 §4.1.1, RFC 6895 §2.3
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return "rcode " + std::to_string(rcode);
  }
}

constexpr int rcode_noerror = 0, rcode_servfail = 2, rcode_nxdomain = 3;

// libunbound (1.17.1, and upstream still) answers SERVFAIL for an RRset holding a record with
// empty rdata: its memdup() returns NULL for 0 octets, taken as out of memory (libworker.c,
// fill_res). A TXT record of no strings is not valid (RFC 1035 §3.3.14) but is published, and RFC
// 7208's test suite expects the other records to count ("null-text"). The answer packet is intact:
// the records are read from it.
std::optional<DnsRecordSet> textFromPacket(const std::string& packet, uint16_t type) {
  if (type != dns_type::TXT && type != dns_type::SPF) return std::nullopt;
  DnsRecordSet set;
  if (addAnswerSection(set, packet, type) != rcode_noerror || set.txt.empty()) return std::nullopt;
  set.status = DnsStatus::Ok;
  set.packet = packet;
  return set;
}

DnsRecordSet recordSet(const ub_result& result, uint16_t type) {
  DnsRecordSet set;
  if (result.answer_packet != nullptr && result.answer_len > 0)
    set.packet.assign(static_cast<const char*>(result.answer_packet), static_cast<std::size_t>(result.answer_len));
  if (result.rcode == rcode_servfail) {
    if (auto recovered = textFromPacket(set.packet, type)) return std::move(*recovered);
  }
  if (result.rcode == rcode_nxdomain) {
    set.status = DnsStatus::NxDomain;
  } else if (result.rcode != rcode_noerror) {
    // libunbound also answers SERVFAIL itself when no server answered after its own retries
    // (5–17 s against a silent one), and keeps that in its cache for 5 s (NORR_TTL).
    set.status = DnsStatus::ServFail;
    set.error = rcodeText(result.rcode);
  } else if (!result.havedata) {
    set.status = DnsStatus::NoData;
  } else {
    set.status = DnsStatus::Ok;
    for (int i = 0; result.data[i] != nullptr; ++i) {
      std::string_view rdata(result.data[i], static_cast<std::size_t>(result.len[i]));
      if (!addRecordData(set, type, rdata)) {
        DnsRecordSet malformed;
        malformed.status = DnsStatus::ServFail;
        malformed.packet = std::move(set.packet);
        malformed.error = "malformed rdata in the answer";
        return malformed;
      }
    }
  }
  return set;
}

// libunbound resends a query when a retransmit timeout, learnt from the server's round trips,
// runs out, and answers SERVFAIL after outbound-msg-retry (5) sends without an answer. Left so,
// behind a fast local resolver the learnt timeout sits at its 50 ms floor, and a name whose own
// servers are slow failed after 0.66 s (bench/spf_isolation, answers for other names flowing)
// whatever dns.timeout said. So: no resend sooner than 1 s (a stub's usual pace; what
// unbound.conf(5) advises for "forwarders needing more time"), or dns.timeout if shorter, and
// enough sends that libunbound never gives up before the lookup's own deadline does. The floor
// stays short of dns.timeout so that a dead server among several costs a second, not a timeout.
struct ResendSchedule {
  std::string min_rtt_ms;
  std::string sends;
};

ResendSchedule resendSchedule(const DnsConfig& config) {
  using std::chrono::milliseconds;
  const int64_t timeout_ms = std::max<int64_t>(1, std::chrono::duration_cast<milliseconds>(config.timeout).count());
  const int64_t floor_ms = std::clamp<int64_t>(timeout_ms, 50, 1000);
  const int64_t deadline_ms = timeout_ms * (int64_t{config.retries} + 1);
  const int64_t sends = std::min<int64_t>(deadline_ms / floor_ms + 2, 100);
  return {std::to_string(floor_ms), std::to_string(sends)};
}

}  // namespace

// libunbound's blocking ub_resolve() has no per-query timeout (its own retries against a silent
// server took up to 17 s here), so queries go through the asynchronous API: libunbound's background
// thread resolves, writes answers to the pipe behind ub_fd(), and this engine's dispatcher thread
// runs ub_process() on it, which calls onAnswer() for each; the asking thread waits on its Pending
// with its own deadline.
struct Resolver::Engine {
  UbContext context;
  AnswerCache answers;
  // Written once, by the destructor, to stop the dispatcher.
  FileDescriptor wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  Duration deadline{};
  std::thread dispatcher;

  ~Engine() {
    if (dispatcher.joinable()) {
      uint64_t one = 1;
      // An eventfd write of 1 cannot fail short of a counter overflow; the dispatcher then returns.
      [[maybe_unused]] auto written = ::write(wake.get(), &one, sizeof one);
      dispatcher.join();
    }
    // Now nothing runs ub_process(); ub_ctx_delete (the context's deleter) stops libunbound's own
    // thread and drops queries still in flight without calling their callbacks. Only cancelled
    // queries can be in flight here, and their tickets were freed by the callers that cancelled.
  }

  void dispatch() noexcept {
    pollfd fds[2] = {{ub_fd(context.get()), POLLIN, 0}, {wake.get(), POLLIN, 0}};
    for (;;) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0) ub_process(context.get());
    }
  }
};

Resolver::Resolver(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}
Resolver::~Resolver() = default;

std::expected<std::shared_ptr<Resolver>, std::string> Resolver::create(const DnsConfig& config) {
  auto engine = std::make_unique<Engine>();
  if (engine->wake.get() < 0) return std::unexpected(std::string("eventfd: ") + std::strerror(errno));
  engine->context.reset(ub_ctx_create());
  ub_ctx* context = engine->context.get();
  if (context == nullptr) return std::unexpected("libunbound: cannot create a context");
  engine->deadline = config.timeout * (config.retries + 1);

  // Threads, not libunbound's default of a forked process for the background resolver.
  if (int error = ub_ctx_async(context, 1)) return std::unexpected(unboundError("ub_ctx_async", error));
  const ResendSchedule resend = resendSchedule(config);
  // Forward mode without validation: the gateway asks recursive resolvers, it is not one; DNSSEC
  // validation (the validator module) can come later with trust anchors.
  // libunbound answers some zones itself, as a recursive server would (RFC 6303, RFC 6761): the
  // reverse zones of private and documentation addresses (10/8, 192.168/16, 192.0.2/24, …) get
  // NXDOMAIN without a query. The resolvers the gateway forwards to know the site's own zones (an
  // internal relay's PTR in 10/8), so those questions go to them, as does home.arpa (RFC 8375).
  // localhost, invalid., test. and onion. stay answered locally, as RFC 6761 and 7686 ask.
  // ("home.arpa. nodefault" would be the usual way, but libunbound's option parser (1.17.1, and
  // upstream still) stores the whole "name nodefault" text as the name; a transparent zone with
  // no data turns the default off as well and forwards every question.)
  const std::pair<const char*, const char*> options[] = {
      {"infra-cache-min-rtt:", resend.min_rtt_ms.c_str()},
      {"outbound-msg-retry:", resend.sends.c_str()},
      {"module-config:", "iterator"},
      {"outgoing-range:", outgoing_udp_ports},
      {"unblock-lan-zones:", "yes"},
      {"insecure-lan-zones:", "yes"},
      {"local-zone:", "home.arpa. transparent"},
  };
  for (const auto& [option, value] : options) {
    if (int error = ub_ctx_set_option(context, option, value))
      return std::unexpected(unboundError(std::string("libunbound option ") + option + " " + value, error));
  }
  if (config.servers.empty()) {
    if (int error = ub_ctx_resolvconf(context, nullptr))
      return std::unexpected(unboundError("reading /etc/resolv.conf", error));
  }
  for (const HostPort& server : config.servers) {
    // libunbound's own address syntax: "192.0.2.1@5353", "2001:db8::1@5353".
    std::string address = server.host + "@" + std::to_string(server.port);
    if (int error = ub_ctx_set_fwd(context, address.c_str()))
      return std::unexpected(unboundError("dns server " + server.text(), error));
  }

  try {
    engine->dispatcher = std::thread([raw = engine.get()] { raw->dispatch(); });
  } catch (const std::system_error& error) {
    return std::unexpected(std::string("cannot start the resolver thread: ") + error.what());
  }
  return std::shared_ptr<Resolver>(new Resolver(std::move(engine)));
}

Duration Resolver::deadline() const { return engine_->deadline; }

DnsRecordSet Resolver::query(std::string_view name, uint16_t type) const {
  DnsRecordSet answer;
  auto question = presentationName(name);
  if (!question) {
    answer.error = std::move(question.error());
    return answer;
  }
  auto cached = engine_->answers.find(name, type);
  countDnsQuestion(cached.has_value());
  if (cached) return std::move(*cached);
  ub_ctx* context = engine_->context.get();
  auto deadline = std::chrono::steady_clock::now() + engine_->deadline;
  auto ticket = std::make_unique<Ticket>(std::make_shared<Pending>());
  Ticket pending = *ticket;
  int id = 0;
  if (int error = ub_resolve_async(context, question->c_str(), type, class_in, ticket.get(), &onAnswer, &id)) {
    answer.error = unboundError("ub_resolve_async", error);  // no callback will come: the ticket is ours
    return answer;
  }
  // From here the ticket belongs to onAnswer(), unless ub_cancel() below succeeds.
  Ticket* handed_over = ticket.release();

  std::unique_lock lock(pending->mutex);
  if (!pending->done.wait_until(lock, deadline, [&] { return pending->answered; })) {
    lock.unlock();
    // In threaded mode ub_cancel() succeeds only while the answer has not been taken from the
    // pipe, and then the callback is never called: the ticket is ours to free. It fails (UB_NOID)
    // when ub_process() already took the answer: onAnswer() runs or ran and frees the ticket.
    if (ub_cancel(context, id) == UB_NOERROR) {
      std::unique_ptr<Ticket> reclaimed(handed_over);
    }
    answer.status = DnsStatus::Timeout;
    answer.error = "no answer within " + std::to_string(engine_->deadline.count()) + "ms";
    return answer;
  }
  int error = pending->error;
  UbResult result = std::move(pending->result);
  lock.unlock();
  if (error != 0 || result == nullptr) {
    answer.error = unboundError("resolving", error);
    return answer;
  }
  DnsRecordSet set = recordSet(*result, type);
  engine_->answers.store(name, type, set, result->ttl);
  return set;
}

}  // namespace mailgate
