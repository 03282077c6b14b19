#include "gateway/pipeline/pipeline.h"

#include <cstdio>
#include <utility>

#include "gateway/pipeline/allowance.h"
#include "gateway/pipeline/job_batch.h"
#include "gateway/smtp/replies.h"

namespace mailgate {

std::string DetailValue::text() const {
  if (const auto* text = std::get_if<std::string>(&value_)) return *text;
  if (const auto* flag = std::get_if<bool>(&value_)) return *flag ? "true" : "false";
  if (const auto* count = std::get_if<int64_t>(&value_)) return std::to_string(*count);
  char number[32];
  std::snprintf(number, sizeof number, "%g", std::get<double>(value_));
  return number;
}

const char* kindName(Verdict::Kind kind) {
  switch (kind) {
    case Verdict::Kind::Continue: return "continue";
    case Verdict::Kind::Tag: return "tag";
    case Verdict::Kind::TempFail: return "tempfail";
    case Verdict::Kind::Reject: return "reject";
  }
  return "?";
}

const char* phaseName(Phase phase) {
  switch (phase) {
    case Phase::Connect: return "connect";
    case Phase::Helo: return "helo";
    case Phase::MailFrom: return "mail";
    case Phase::Rcpt: return "rcpt";
    case Phase::EndOfData: return "data";
  }
  return "?";
}

// Inline, nothing runs beside the job to notice a timeout: the job's own bounds (the rules
// stage's scan_budget, DNS timeouts) are what end it.
void InlineJobRunner::submit(Job job, Duration, Done done) { done(job(std::stop_token())); }

void InlineJobRunner::await(Deferred deferred, Duration, Done done) {
  // Inline, whatever the verdict waits for already ran: it resumes before subscribe returns.
  deferred.subscribe([done = std::move(done)](Verdict verdict) mutable { done(std::move(verdict)); });
}

struct Pipeline::Run {
  std::shared_ptr<const Pipeline> pipeline;
  StageInput input;
  JobRunner* runner;
  std::move_only_function<void(PhaseResult)> done;
  std::size_t next = 0;
  PhaseResult result;
  std::chrono::steady_clock::time_point started;
  // A step a batching stage answered that is not a Job: it is folded after the batch before it.
  struct PendingStep {
    const PipelineStage* entry;
    Step step;
  };
  std::optional<PendingStep> pending;
};

std::shared_ptr<const Pipeline> Pipeline::make(std::vector<PipelineStage> stages) {
  return std::make_shared<const Pipeline>(std::move(stages));
}

Pipeline::Pipeline(std::vector<PipelineStage> stages) : stages_(std::move(stages)) {
  for (const auto& entry : stages_) {
    phases_ |= entry.stage->phases();
    reads_while_arriving_ = reads_while_arriving_ || entry.stage->readsMessageWhileArriving();
    if (auto limit = entry.stage->maxMessageBytes()) {
      max_message_bytes_ = max_message_bytes_ ? std::min(*max_message_bytes_, *limit) : *limit;
    }
  }
}

void Pipeline::messageBytes(const StageInput& input, std::string_view bytes) const {
  for (const auto& entry : stages_)
    if (entry.stage->readsMessageWhileArriving()) entry.stage->messageBytes(input, bytes);
}

void Pipeline::run(StageInput input, JobRunner& runner,
                   std::move_only_function<void(PhaseResult)> done) const {
  auto state = std::make_shared<Run>();
  state->pipeline = shared_from_this();
  state->input = std::move(input);
  state->runner = &runner;
  state->done = std::move(done);
  step(std::move(state));
}

namespace {

// A refusal must carry a reply of its class: 5xx for Reject ("never"), 4xx for TempFail ("later").
// A stage that gets it wrong would make a sender bounce mail it should retry, or retry forever
// what it should bounce; it is answered as a local error instead (Postfix's smtpd_check_reject,
// OpenSMTPD's filter-reply check).
void enforceReplyClass(Verdict& verdict, std::string_view stage) {
  bool right = verdict.kind == Verdict::Kind::Reject ? verdict.reply.permanent() : verdict.reply.transient();
  if (right) return;
  std::string reason = std::string(stage) + " asked to " + kindName(verdict.kind) + " with \"" +
                       verdict.reply.summary() + "\", a reply of the wrong class; answered as a local error";
  verdict = Verdict::tempFail(replies::stageMisbehaved(), std::move(reason));
}

// The allowance that skips `stage`'s refusals in this session or transaction, if any.
const Allowance* allowanceFor(const StageInput& input, std::string_view stage) {
  for (const auto* scratch : {input.scratch.get(), input.session_scratch.get()}) {
    if (!scratch) continue;
    if (auto allowance = scratch->find<Allowance>(); allowance && allowance->covers(stage)) return allowance.get();
  }
  return nullptr;
}

// Folds one stage's verdict into the phase result; returns true when the phase is over.
bool fold(PhaseResult& result, const PipelineStage& entry, const StageInput& input, Verdict verdict,
          std::chrono::steady_clock::time_point started) {
  Phase phase = input.phase;
  if (verdict.ends()) enforceReplyClass(verdict, entry.stage->name());
  const Allowance* allowed = verdict.ends() ? allowanceFor(input, entry.stage->name()) : nullptr;
  bool delayed = verdict.ends() && verdict.answer_at && *verdict.answer_at > phase;
  StageOutcome outcome{std::string(entry.stage->name()), phase, verdict.kind, verdict.reason,
                       verdict.ends() ? verdict.reply.summary() : std::string(), verdict.score,
                       verdict.scored, entry.mode == StageMode::Shadow,
                       std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started),
                       std::move(verdict.details), std::move(verdict.detail_lists), std::nullopt};
  if (delayed) outcome.answer_at = *verdict.answer_at;
  if (allowed) outcome.allowed_by = allowed->by;
  result.outcomes.push_back(std::move(outcome));
  // Allowed: the refusal is in the record, and nothing else happens.
  if (allowed) return false;
  // Shadow mode: the outcome is logged as what the stage would have done; nothing else happens,
  // except that removals stand (fields only this gateway may vouch for still do not pass).
  if (entry.mode == StageMode::Shadow) {
    for (auto& header : verdict.headers)
      if (header.removesOnly()) result.headers.push_back(std::move(header));
    return false;
  }
  if (delayed) {
    if (!result.delayed)
      result.delayed = DelayedRefusal{verdict.kind, std::move(verdict.reply), *verdict.answer_at, std::string(entry.stage->name())};
    return false;
  }
  switch (verdict.kind) {
    case Verdict::Kind::Continue:
    case Verdict::Kind::Tag:
      if (verdict.kind == Verdict::Kind::Tag) {
        if (result.kind == Verdict::Kind::Continue) result.kind = Verdict::Kind::Tag;
        result.score += verdict.score;
      }
      for (auto& header : verdict.headers) result.headers.push_back(std::move(header));
      for (auto& entry : verdict.auth_results) result.auth_results.push_back(std::move(entry));
      return false;
    case Verdict::Kind::TempFail:
    case Verdict::Kind::Reject:
      result.kind = verdict.kind;
      result.reply = std::move(verdict.reply);
      return true;
  }
  return false;
}

// Whether a refusal from this stage would end the phase: not in shadow mode, not allowed.
bool stopsPhase(const PipelineStage& entry, const StageInput& input) {
  return entry.mode != StageMode::Shadow && allowanceFor(input, entry.stage->name()) == nullptr;
}

Verdict timedOut(const PipelineStage& entry) {
  return Verdict::tempFail(replies::stageTimedOut(),
                           std::string(entry.stage->name()) + " did not answer within " +
                               std::to_string(entry.timeout.count()) + " ms");
}

}  // namespace

void Pipeline::step(std::shared_ptr<Run> run) {
  const auto& stages = run->pipeline->stages_;
  while (run->pending || run->next < stages.size()) {
    const PipelineStage* entry = nullptr;
    Step step_result;
    if (run->pending) {
      entry = run->pending->entry;
      step_result = std::move(run->pending->step);
      run->pending.reset();
    } else {
      entry = &stages[run->next++];
      if ((entry->stage->phases() & phaseBit(run->input.phase)) == 0) continue;
      run->started = std::chrono::steady_clock::now();
      step_result = entry->stage->check(run->input);
    }
    if (auto* verdict = std::get_if<Verdict>(&step_result)) {
      if (fold(run->result, *entry, run->input, std::move(*verdict), run->started)) break;
      continue;
    }
    if (auto* job = std::get_if<Job>(&step_result); job && entry->stage->batchesJobs()) {
      JobBatch batch;
      batch.add(entry, std::move(*job), stopsPhase(*entry, run->input));
      gatherBatch(*run, batch);
      if (batch.size() > 1) {
        submitBatch(std::move(run), std::move(batch));
        return;
      }
      step_result = batch.takeOnlyJob();
    }
    // Asynchronous: the runner calls back on the loop; the run resumes from there. A runner that
    // answers inline just recurses one level per stage.
    JobRunner* runner = run->runner;
    Duration timeout = entry->timeout;
    auto resume = [run, entry](std::optional<Verdict> verdict) mutable {
      Verdict answer = verdict ? std::move(*verdict) : timedOut(*entry);
      if (fold(run->result, *entry, run->input, std::move(answer), run->started)) endPhase(*run);
      step(std::move(run));
    };
    if (auto* job = std::get_if<Job>(&step_result)) runner->submit(std::move(*job), timeout, std::move(resume));
    else runner->await(std::move(std::get<Deferred>(step_result)), timeout, std::move(resume));
    return;
  }
  auto done = std::move(run->done);
  done(std::move(run->result));
}

void Pipeline::endPhase(Run& run) {
  run.next = run.pipeline->stages_.size();
  run.pending.reset();
}

// The batching stages that follow, in this phase, with their Jobs; the first that answers
// something else is kept as the run's pending step.
void Pipeline::gatherBatch(Run& run, JobBatch& batch) {
  const auto& stages = run.pipeline->stages_;
  while (run.next < stages.size()) {
    const PipelineStage& follower = stages[run.next];
    if ((follower.stage->phases() & phaseBit(run.input.phase)) == 0) {
      ++run.next;
      continue;
    }
    if (!follower.stage->batchesJobs()) return;
    ++run.next;
    Step answer = follower.stage->check(run.input);
    if (auto* job = std::get_if<Job>(&answer)) {
      batch.add(&follower, std::move(*job), stopsPhase(follower, run.input));
      continue;
    }
    run.pending = Run::PendingStep{&follower, std::move(answer)};
    return;
  }
}

void Pipeline::submitBatch(std::shared_ptr<Run> run, JobBatch batch) {
  JobRunner* runner = run->runner;
  Duration timeout = batch.timeout();
  auto submitted = std::chrono::steady_clock::now();
  auto members = batch.members();
  auto progress = batch.progress();
  auto resume = [run, members = std::move(members), progress, submitted](std::optional<Verdict> finished) mutable {
    auto results = progress->take();
    auto started = submitted;
    bool over = false;
    std::size_t folded = 0;
    for (; folded < results.size() && !over; ++folded) {
      auto& [verdict, took] = results[folded];
      over = fold(run->result, *members[folded], run->input, std::move(verdict), started);
      started += took;
    }
    if (!over && folded < members.size()) {
      // Timed out: the member that was running (or never started) answers the timeout. Otherwise
      // the batch stopped at a verdict the fold did not take as the end: the rest run one by one.
      if (!finished) {
        over = fold(run->result, *members[folded], run->input, timedOut(*members[folded]), started);
        ++folded;
      }
      if (!over && folded < members.size()) {
        run->next = static_cast<std::size_t>(members[folded] - run->pipeline->stages_.data());
        run->pending.reset();
      }
    }
    if (over) endPhase(*run);
    step(std::move(run));
  };
  runner->submit(std::move(batch).job(), timeout, std::move(resume));
}

}  // namespace mailgate
