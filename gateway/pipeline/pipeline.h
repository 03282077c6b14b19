#pragma once
// An immutable, ordered set of stages built from the [[stage]] tables. A transaction keeps a
// shared_ptr to the Pipeline it started with, so a reload (SIGHUP) never changes the rules under a
// transaction in flight. run() folds the verdicts of one phase; jobs go to a JobRunner, which
// knows the event loop (the pipeline does not).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/pipeline/stage.h"
#include "gateway/pipeline/stage_mode.h"
#include "gateway/util/duration.h"

namespace mailgate {

class JobBatch;

// Runs jobs off the event loop and calls `done` back on it: with the verdict, or with nullopt
// when the job did not finish within `timeout`.
class JobRunner {
 public:
  using Done = std::move_only_function<void(std::optional<Verdict>)>;
  virtual ~JobRunner() = default;
  virtual void submit(Job job, Duration timeout, Done done) = 0;
  // Waits (on the loop, holding no thread) for a Deferred verdict, at most `timeout`.
  virtual void await(Deferred deferred, Duration timeout, Done done) = 0;
};

// Runs each job at once on the calling thread (for `mailgate check` and unit tests).
class InlineJobRunner final : public JobRunner {
 public:
  void submit(Job job, Duration timeout, Done done) override;
  void await(Deferred deferred, Duration timeout, Done done) override;
};

struct StageOutcome {
  std::string stage;
  Phase phase;
  Verdict::Kind kind;
  std::string reason;
  std::string reply;  // the reply it asked for (TempFail, Reject), for the log
  double score = 0;
  bool scored = false;  // Verdict::scored: log the score even at 0
  bool shadow = false;  // what the stage would have done; the transaction went on
  std::chrono::microseconds duration{0};
  Details details;
  std::vector<std::pair<std::string, std::vector<Details>>> detail_lists;
  std::optional<Phase> answer_at = {};  // a refusal decided now and answered at this later phase
  std::string allowed_by = {};     // a refusal not given: an allow-list match skipped it
};

// A refusal decided now and answered at a later phase (Verdict::answer_at).
struct DelayedRefusal {
  Verdict::Kind kind = Verdict::Kind::Reject;  // TempFail or Reject
  Reply reply;
  Phase answer_at = Phase::Rcpt;
  std::string stage;
};

struct PhaseResult {
  Verdict::Kind kind = Verdict::Kind::Continue;  // Continue, Tag, TempFail or Reject
  Reply reply;                                   // TempFail, Reject
  std::vector<HeaderField> headers;
  std::vector<std::string> auth_results;
  double score = 0;
  std::vector<StageOutcome> outcomes;
  std::optional<DelayedRefusal> delayed;  // the first stage's, when the phase itself went on

  bool ends() const { return kind == Verdict::Kind::TempFail || kind == Verdict::Kind::Reject; }
};

struct PipelineStage {
  std::unique_ptr<Stage> stage;
  StageMode mode = StageMode::Enforce;
  Duration timeout = std::chrono::seconds(30);
};

class Pipeline : public std::enable_shared_from_this<Pipeline> {
 public:
  // Always held by shared_ptr: a run in flight keeps its pipeline alive.
  static std::shared_ptr<const Pipeline> make(std::vector<PipelineStage> stages);
  explicit Pipeline(std::vector<PipelineStage> stages);

  // Runs every stage that hooks `input.phase`, in order, and calls `done` once with the folded
  // result (possibly before run() returns, when no stage needs a job).
  void run(StageInput input, JobRunner& runner, std::move_only_function<void(PhaseResult)> done) const;

  bool hooks(Phase phase) const { return (phases_ & phaseBit(phase)) != 0; }
  // Whether any stage reads the message while it arrives, and the call that hands it a piece.
  bool readsMessageWhileArriving() const { return reads_while_arriving_; }
  void messageBytes(const StageInput& input, std::string_view bytes) const;
  std::optional<uint64_t> maxMessageBytes() const { return max_message_bytes_; }
  const std::vector<PipelineStage>& stages() const { return stages_; }

 private:
  struct Run;
  static void step(std::shared_ptr<Run> run);
  static void endPhase(Run& run);
  static void gatherBatch(Run& run, JobBatch& batch);
  static void submitBatch(std::shared_ptr<Run> run, JobBatch batch);

  std::vector<PipelineStage> stages_;
  PhaseMask phases_ = 0;
  bool reads_while_arriving_ = false;
  std::optional<uint64_t> max_message_bytes_;
};

}  // namespace mailgate
