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
#include <variant>
#include <vector>

#include "gateway/pipeline/auth_facts.h"
#include "gateway/pipeline/verdict.h"
#include "gateway/smtp/address.h"
#include "gateway/spool/spool.h"

namespace mailgate {

enum class Phase : uint8_t { Connect, Helo, MailFrom, Rcpt, EndOfData };
using PhaseMask = uint32_t;
constexpr PhaseMask phaseBit(Phase phase) { return PhaseMask{1} << static_cast<unsigned>(phase); }
const char* phaseName(Phase phase);  // "connect", "helo", "mail", "rcpt", "data"

class JobRunner;
class Stage;

// Per-transaction memory for stages: a stage may start work at one phase and pick up its result
// at a later one (SPF starts at MAIL FROM and is awaited at RCPT). One slot per stage; touched on
// the event loop only (jobs keep their own shared_ptr to what they fill).
class TransactionScratch {
 public:
  template <class T>
  std::shared_ptr<T> get(const Stage* stage) const {
    auto found = slots_.find(stage);
    return found == slots_.end() ? nullptr : std::static_pointer_cast<T>(found->second);
  }
  void set(const Stage* stage, std::shared_ptr<void> value) { slots_[stage] = std::move(value); }
  // Shared by the authentication stages (spf, dkim → dmarc); jobs may keep the pointer.
  const std::shared_ptr<AuthFacts>& auth() const { return auth_; }

 private:
  std::map<const Stage*, std::shared_ptr<void>> slots_;
  std::shared_ptr<AuthFacts> auth_ = std::make_shared<AuthFacts>();
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
  std::shared_ptr<TransactionScratch> scratch;  // from MailFrom on
  // For work a stage starts now and awaits at a later phase; its `done` runs on the loop.
  JobRunner* background = nullptr;
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
  virtual void messageBytes(const StageInput& input, std::string_view bytes) const {
    (void)input;
    (void)bytes;
  }
};

}  // namespace mailgate
