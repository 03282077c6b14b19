#pragma once
// The one interface every filter stage implements (design.md §5). A stage never blocks: it
// answers a Verdict at once, or a Job that the host runs on the thread pool. A Job owns copies of
// what it reads (the message spool is shared and read-only while the job runs).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <typeindex>
#include <variant>
#include <vector>

#include "gateway/pipeline/network.h"
#include "gateway/pipeline/phase.h"
#include "gateway/pipeline/verdict.h"
#include "gateway/smtp/address.h"
#include "gateway/spool/spool.h"

namespace mailgate {

class JobRunner;
class Stage;

// Memory for stages, one per transaction and one per session: a stage may start work at one
// phase and pick up its result at a later one (SPF starts at MAIL FROM and is awaited at RCPT; a
// blocklist looked up at connect is applied at RCPT). One slot per stage, plus one shared value
// per type for what several stages build on (the authentication results spf and dkim find and
// dmarc reads). Touched on the event loop only; jobs keep their own shared_ptr to what they fill.
class Scratch {
 public:
  template <class T>
  std::shared_ptr<T> get(const Stage* stage) const {
    auto found = slots_.find(stage);
    return found == slots_.end() ? nullptr : std::static_pointer_cast<T>(found->second);
  }
  void set(const Stage* stage, std::shared_ptr<void> value) { slots_[stage] = std::move(value); }
  template <class T>
  std::shared_ptr<T> find() const {
    auto found = shared_.find(std::type_index(typeid(T)));
    return found == shared_.end() ? nullptr : std::static_pointer_cast<T>(found->second);
  }
  template <class T>
  std::shared_ptr<T> shared() {
    auto& slot = shared_[std::type_index(typeid(T))];
    if (!slot) slot = std::make_shared<T>();
    return std::static_pointer_cast<T>(slot);
  }

 private:
  std::map<const Stage*, std::shared_ptr<void>> slots_;
  std::map<std::type_index, std::shared_ptr<void>> shared_;
};

// What a stage may look at. Copied into each run of a phase, so a Job may keep it.
struct StageInput {
  Phase phase = Phase::Connect;
  std::string client_ip;
  uint16_t client_port = 0;
  std::string helo;
  std::optional<Path> sender;             // from MailFrom on
  std::optional<uint64_t> declared_size;  // MAIL SIZE=
  BodyType body = BodyType::Unspecified;
  std::vector<Path> recipients;           // accepted so far
  std::optional<Path> recipient;          // Rcpt: the one being decided
  std::shared_ptr<const Spool> message;   // EndOfData: the content as received
  uint64_t message_size = 0;              // EndOfData
  std::string hostname;                   // server.hostname (authserv-id, receiver)
  std::shared_ptr<Scratch> scratch;          // this transaction's, from MailFrom on
  std::shared_ptr<Scratch> session_scratch;  // this session's, from Connect on
  // For work a stage starts now and awaits at a later phase; its `done` runs on the loop.
  JobRunner* background = nullptr;
  // Streams to network peers on the session's loop (nullptr where there is none).
  NetworkAccess* network = nullptr;
};

// The stop token is requested when the stage's timeout passes (its verdict is then no longer
// wanted): long work looks at it and gives up, so that the pool thread is free again.
using Job = std::move_only_function<Verdict(std::stop_token)>;
// A verdict that work already under way will give (e.g. a check started at an earlier phase):
// `subscribe` is called once, on the loop, with the callback to call (on the loop) when it is
// known. Unlike a Job, waiting for it holds no thread.
struct Deferred {
  using Resume = std::move_only_function<void(Verdict)>;
  std::move_only_function<void(Resume)> subscribe;
  // Called (on the loop) when the stage's timeout passed first: stop the work, free what it holds.
  std::move_only_function<void()> cancel = {};
  // The verdict when the stage's timeout passes first, asked for before `cancel` is called; when
  // empty, the pipeline's own "did not answer" tempfail. A stage whose operator chose what its
  // peer's trouble means (clamav's on_error) answers a timeout the same way.
  std::move_only_function<Verdict()> timed_out = {};
};
using Step = std::variant<Verdict, Job, Deferred>;

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string_view name() const = 0;
  virtual PhaseMask phases() const = 0;
  virtual Step check(const StageInput& input) const = 0;
  // The size this stage refuses messages above, advertised with EHLO SIZE and enforced while DATA
  // arrives so that a refused message is never held whole.
  virtual std::optional<uint64_t> maxMessageBytes() const { return std::nullopt; }
  // Stages that read the message while it arrives (DKIM hashes the body as DATA comes in, so the
  // end of data costs no second pass) get each piece, in order, as received and dot-unstuffed, on
  // the loop: they must only copy it and hand work to `input.background`. A message refused while
  // it arrives gets no end; what the stage kept goes with the transaction's scratch.
  virtual bool readsMessageWhileArriving() const { return false; }
  // True for a stage whose check() only gathers what its Job reads, with no effect of its own and
  // nothing taken from the verdicts of the stages before it: the pipeline may then call it before
  // those verdicts are known and run the Jobs of such neighbours in one trip to the pool, in order,
  // stopping at the first verdict that ends the phase (a trip costs two thread wake-ups).
  virtual bool batchesJobs() const { return false; }
  virtual void messageBytes(const StageInput& input, std::string_view bytes) const {
    (void)input;
    (void)bytes;
  }
};

}  // namespace mailgate
