// Pipeline: verdicts fold in order, the first TempFail/Reject ends the phase, tags accumulate,
// shadow stages only leave an outcome, jobs resume the run, and a job that never answers becomes
// the stage's tempfail. Neighbouring batching stages take one trip to the pool, in order, stopping
// at the first refusal that ends the phase, and a batch that times out blames its running member.
#include <boost/test/unit_test.hpp>

#include <deque>
#include <functional>
#include <stop_token>
#include <utility>

#include "gateway/transaction/transaction_record.h"
#include "gateway/pipeline/pipeline.h"

namespace mailgate {
namespace {

class FixedStage final : public Stage {
 public:
  FixedStage(std::string name, PhaseMask phases, Verdict verdict, bool as_job = false, bool batches = false)
      : name_(std::move(name)), phases_(phases), verdict_(std::move(verdict)), as_job_(as_job), batches_(batches) {}
  std::string_view name() const override { return name_; }
  PhaseMask phases() const override { return phases_; }
  bool batchesJobs() const override { return batches_; }
  Step check(const StageInput&) const override {
    ++calls;
    if (as_job_) {
      return Job([verdict = verdict_, runs = runs, during = during](std::stop_token) {
        ++*runs;
        if (*during) (*during)();
        return verdict;
      });
    }
    return verdict_;
  }
  mutable int calls = 0;
  std::shared_ptr<int> runs = std::make_shared<int>(0);                      // the job's runs
  std::shared_ptr<std::function<void()>> during = std::make_shared<std::function<void()>>();  // called in the job

 private:
  std::string name_;
  PhaseMask phases_;
  Verdict verdict_;
  bool as_job_;
  bool batches_;
};

// Holds jobs until the test runs them, like the thread pool would; can also time them out.
class DeferredRunner final : public JobRunner {
 public:
  void submit(Job job, Duration, Done done) override { pending.push_back({std::move(job), std::move(done)}); }
  void await(Deferred deferred, Duration, Done done) override {
    awaiting.push_back(std::move(done));
    deferred.subscribe([this, index = awaiting.size() - 1](Verdict verdict) {
      if (awaiting[index]) std::exchange(awaiting[index], nullptr)(std::move(verdict));
    });
  }
  std::vector<Done> awaiting;
  void runNext() {
    auto entry = std::move(pending.front());
    pending.pop_front();
    entry.second(entry.first(std::stop_token()));
  }
  void timeOutNext() {
    auto entry = std::move(pending.front());
    pending.pop_front();
    entry.second(std::nullopt);
  }
  std::deque<std::pair<Job, Done>> pending;
};

PipelineStage entry(std::unique_ptr<Stage> stage, StageMode mode = StageMode::Enforce) {
  return PipelineStage{std::move(stage), mode, std::chrono::seconds(1)};
}

HeaderField header(std::string name) { return {std::move(name), "x"}; }

// Starts a run of `phase` with an empty input; `result` is set when the run is done (at once, or
// when the runner has run what the stages asked for).
void runPhase(const Pipeline& pipeline, JobRunner& runner, Phase phase, std::optional<PhaseResult>& result) {
  StageInput input;
  input.phase = phase;
  pipeline.run(input, runner, [&result](PhaseResult r) { result = std::move(r); });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pipeline)

BOOST_AUTO_TEST_CASE(tags_accumulate_and_first_reject_ends) {
  std::vector<PipelineStage> stages;
  auto data = phaseBit(Phase::EndOfData);
  stages.push_back(entry(std::make_unique<FixedStage>("a", data, Verdict::tag({header("X-A")}, 1.5, "a"))));
  stages.push_back(entry(std::make_unique<FixedStage>("b", data, Verdict::tag({header("X-B")}, 2.0, "b"))));
  stages.push_back(entry(std::make_unique<FixedStage>("c", data, Verdict::reject(Reply::of(550, "5.7.1", "no"), "c"))));
  auto never_owned = std::make_unique<FixedStage>("d", data, Verdict::proceed());
  auto* never = never_owned.get();
  stages.push_back(entry(std::move(never_owned)));
  auto pipeline = Pipeline::make(std::move(stages));
  InlineJobRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::EndOfData, result);
  BOOST_REQUIRE(result);
  BOOST_TEST(static_cast<int>(result->kind) == static_cast<int>(Verdict::Kind::Reject));
  BOOST_TEST(result->reply.summary() == "550 5.7.1 no");
  BOOST_TEST(result->score == 3.5);
  BOOST_TEST(result->headers.size() == 2u);
  BOOST_TEST(result->outcomes.size() == 3u);
  BOOST_TEST(never->calls == 0);
}

// "tag" in the log means a stage marked the message as suspicious. Results recorded for the
// message (trace headers, Authentication-Results entries) and a shadow stage's tag are not that.
BOOST_AUTO_TEST_CASE(only_an_enforced_tag_makes_the_transaction_tagged) {
  auto data = phaseBit(Phase::EndOfData);
  auto runPhase = [&](Verdict verdict, StageMode mode) {
    std::vector<PipelineStage> stages;
    stages.push_back(entry(std::make_unique<FixedStage>("s", data, std::move(verdict)), mode));
    auto pipeline = Pipeline::make(std::move(stages));
    InlineJobRunner runner;
    Transaction transaction;
    StageInput input;
    input.phase = Phase::EndOfData;
    pipeline->run(input, runner, [&](PhaseResult r) { BOOST_TEST(!transaction.absorb(std::move(r))); });
    return actionOf(Reply::of(250, "2.0.0", "Ok"), transaction.tagged);
  };
  Verdict recorded = Verdict::proceed("none: no signature");
  recorded.headers.push_back(header("Received-SPF"));
  recorded.auth_results.push_back("dkim=none");
  BOOST_TEST(runPhase(recorded, StageMode::Enforce) == "accept");
  BOOST_TEST(runPhase(Verdict::tag({}, 0, "softfail"), StageMode::Shadow) == "accept");
  BOOST_TEST(runPhase(Verdict::tag({}, 0, "softfail"), StageMode::Enforce) == "tag");
  BOOST_TEST(runPhase(Verdict::tag({header("X-Spam-Flag")}, 6, "score 6"), StageMode::Enforce) == "tag");
}

BOOST_AUTO_TEST_CASE(only_stages_hooking_the_phase_run) {
  std::vector<PipelineStage> stages;
  auto mail_only_owned = std::make_unique<FixedStage>("mail", phaseBit(Phase::MailFrom), Verdict::reject(Reply::of(550, "5.7.1", "no"), ""));
  auto* mail_only = mail_only_owned.get();
  stages.push_back(entry(std::move(mail_only_owned)));
  auto pipeline = Pipeline::make(std::move(stages));
  BOOST_TEST(pipeline->hooks(Phase::MailFrom));
  BOOST_TEST(!pipeline->hooks(Phase::Rcpt));
  InlineJobRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::Rcpt, result);
  BOOST_REQUIRE(result);
  BOOST_TEST(static_cast<int>(result->kind) == static_cast<int>(Verdict::Kind::Continue));
  BOOST_TEST(mail_only->calls == 0);
}

BOOST_AUTO_TEST_CASE(shadow_stage_is_logged_but_does_not_act) {
  std::vector<PipelineStage> stages;
  auto data = phaseBit(Phase::EndOfData);
  stages.push_back(entry(std::make_unique<FixedStage>("s", data, Verdict::reject(Reply::of(550, "5.7.1", "no"), "would")),
                         StageMode::Shadow));
  stages.push_back(entry(std::make_unique<FixedStage>("t", data, Verdict::tag({header("X-T")}, 1, "t")), StageMode::Shadow));
  auto pipeline = Pipeline::make(std::move(stages));
  InlineJobRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::EndOfData, result);
  BOOST_REQUIRE(result);
  BOOST_TEST(static_cast<int>(result->kind) == static_cast<int>(Verdict::Kind::Continue));
  BOOST_TEST(result->headers.empty());
  BOOST_REQUIRE(result->outcomes.size() == 2u);
  BOOST_TEST(result->outcomes[0].shadow);
  BOOST_TEST(result->outcomes[0].reason == "would");
  BOOST_TEST(result->outcomes[0].reply == "550 5.7.1 no");
}

BOOST_AUTO_TEST_CASE(jobs_resume_the_run_in_order) {
  std::vector<PipelineStage> stages;
  auto rcpt = phaseBit(Phase::Rcpt);
  stages.push_back(entry(std::make_unique<FixedStage>("job", rcpt, Verdict::tag({header("X-J")}, 1, "j"), true)));
  auto after_owned = std::make_unique<FixedStage>("after", rcpt, Verdict::tempFail(Reply::of(451, "4.7.1", "later"), "t"));
  auto* after = after_owned.get();
  stages.push_back(entry(std::move(after_owned)));
  auto pipeline = Pipeline::make(std::move(stages));
  DeferredRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::Rcpt, result);
  BOOST_TEST(!result);  // waiting for the job
  BOOST_TEST(after->calls == 0);
  BOOST_REQUIRE(runner.pending.size() == 1u);
  runner.runNext();
  BOOST_REQUIRE(result);
  BOOST_TEST(after->calls == 1);
  BOOST_TEST(static_cast<int>(result->kind) == static_cast<int>(Verdict::Kind::TempFail));
  BOOST_TEST(result->headers.empty() == false);
}

BOOST_AUTO_TEST_CASE(a_job_that_times_out_is_a_tempfail) {
  std::vector<PipelineStage> stages;
  stages.push_back(entry(std::make_unique<FixedStage>("slow", phaseBit(Phase::MailFrom), Verdict::proceed(), true)));
  auto pipeline = Pipeline::make(std::move(stages));
  DeferredRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::MailFrom, result);
  runner.timeOutNext();
  BOOST_REQUIRE(result);
  BOOST_TEST(static_cast<int>(result->kind) == static_cast<int>(Verdict::Kind::TempFail));
  BOOST_TEST(result->reply.code() == 451);
  BOOST_TEST(result->reply.enhanced() == "4.3.0");
  BOOST_TEST(result->outcomes[0].reason.find("did not answer") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_deferred_verdict_resumes_the_run_when_it_is_known) {
  // A stage that started work earlier hands out a Deferred; the run waits, holding no thread.
  class Awaiting final : public Stage {
   public:
    std::string_view name() const override { return "awaiting"; }
    PhaseMask phases() const override { return phaseBit(Phase::Rcpt); }
    Step check(const StageInput&) const override {
      return Deferred{[this](Deferred::Resume resume) { resumes.push_back(std::move(resume)); }};
    }
    mutable std::vector<Deferred::Resume> resumes;
  };
  auto owned = std::make_unique<Awaiting>();
  Awaiting* awaiting = owned.get();
  std::vector<PipelineStage> stages;
  stages.push_back(entry(std::move(owned)));
  auto pipeline = Pipeline::make(std::move(stages));
  DeferredRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::Rcpt, result);
  BOOST_TEST(!result);
  BOOST_REQUIRE(awaiting->resumes.size() == 1u);
  awaiting->resumes[0](Verdict::reject(Reply::of(550, "5.7.23", "no"), "late"));
  BOOST_REQUIRE(result);
  BOOST_TEST(result->reply.summary() == "550 5.7.23 no");
}

// Three batching stages and one that does not: one pool job for the three, their outcomes in
// order, and the fourth only asked once the batch's verdicts are folded.
BOOST_AUTO_TEST_CASE(neighbouring_batching_jobs_take_one_trip_in_order) {
  auto data = phaseBit(Phase::EndOfData);
  std::vector<PipelineStage> stages;
  for (const char* name : {"first", "second", "third"})
    stages.push_back(entry(std::make_unique<FixedStage>(name, data, Verdict::tag({header(std::string("X-") + name)}, 1, name), true, true)));
  auto last_owned = std::make_unique<FixedStage>("last", data, Verdict::proceed("ok"));
  auto* last = last_owned.get();
  stages.push_back(entry(std::move(last_owned)));
  auto pipeline = Pipeline::make(std::move(stages));
  DeferredRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::EndOfData, result);
  BOOST_REQUIRE(runner.pending.size() == 1u);
  BOOST_TEST(last->calls == 0);
  runner.runNext();
  BOOST_REQUIRE(result);
  BOOST_TEST(runner.pending.empty());
  BOOST_REQUIRE(result->outcomes.size() == 4u);
  BOOST_TEST(result->outcomes[0].stage == "first");
  BOOST_TEST(result->outcomes[1].stage == "second");
  BOOST_TEST(result->outcomes[2].stage == "third");
  BOOST_TEST(result->outcomes[3].stage == "last");
  BOOST_TEST(result->headers.size() == 3u);
  BOOST_TEST(result->score == 3.0);
}

// A refusal ends the batch: the member after it never runs and leaves no outcome; a shadowed
// member's refusal does not.
BOOST_AUTO_TEST_CASE(a_refusal_ends_the_batch_unless_shadowed) {
  auto data = phaseBit(Phase::EndOfData);
  auto reject = Verdict::reject(Reply::of(550, "5.7.1", "no"), "refused");
  std::vector<PipelineStage> stages;
  stages.push_back(entry(std::make_unique<FixedStage>("shadowed", data, reject, true, true), StageMode::Shadow));
  stages.push_back(entry(std::make_unique<FixedStage>("refuses", data, reject, true, true)));
  auto after_owned = std::make_unique<FixedStage>("after", data, Verdict::proceed(), true, true);
  auto after_runs = after_owned->runs;
  stages.push_back(entry(std::move(after_owned)));
  auto pipeline = Pipeline::make(std::move(stages));
  DeferredRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::EndOfData, result);
  BOOST_REQUIRE(runner.pending.size() == 1u);
  runner.runNext();
  BOOST_REQUIRE(result);
  BOOST_TEST(*after_runs == 0);
  BOOST_TEST(static_cast<int>(result->kind) == static_cast<int>(Verdict::Kind::Reject));
  BOOST_TEST(result->reply.code() == 550);
  BOOST_REQUIRE(result->outcomes.size() == 2u);
  BOOST_TEST(result->outcomes[0].shadow);
  BOOST_TEST(result->outcomes[1].stage == "refuses");
}

// A batch whose time is up: the members that finished are folded, the next one is the one that
// did not answer (its 451), and nothing after it runs.
BOOST_AUTO_TEST_CASE(a_batch_that_times_out_blames_the_member_that_had_not_answered) {
  auto data = phaseBit(Phase::EndOfData);
  std::vector<PipelineStage> stages;
  stages.push_back(entry(std::make_unique<FixedStage>("quick", data, Verdict::tag({header("X-Q")}, 1, "q"), true, true)));
  auto stopper_owned = std::make_unique<FixedStage>("stopper", data, Verdict::proceed("done"), true, true);
  std::stop_source timeout;
  *stopper_owned->during = [&timeout] { timeout.request_stop(); };  // the runner's timer fires now
  stages.push_back(entry(std::move(stopper_owned)));
  auto slow_owned = std::make_unique<FixedStage>("slow", data, Verdict::proceed(), true, true);
  auto slow_runs = slow_owned->runs;
  stages.push_back(entry(std::move(slow_owned)));
  auto pipeline = Pipeline::make(std::move(stages));
  DeferredRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::EndOfData, result);
  BOOST_REQUIRE(runner.pending.size() == 1u);
  auto [job, done] = std::move(runner.pending.front());
  runner.pending.pop_front();
  job(timeout.get_token());
  done(std::nullopt);
  BOOST_REQUIRE(result);
  BOOST_TEST(*slow_runs == 0);
  BOOST_REQUIRE(result->outcomes.size() == 3u);
  BOOST_TEST(result->outcomes[0].stage == "quick");
  BOOST_TEST(result->outcomes[1].stage == "stopper");
  BOOST_TEST(result->outcomes[2].stage == "slow");
  BOOST_TEST(result->outcomes[2].reason.find("did not answer") != std::string::npos);
  BOOST_TEST(static_cast<int>(result->kind) == static_cast<int>(Verdict::Kind::TempFail));
  BOOST_TEST(result->reply.code() == 451);
}

// A batching stage that answers at once (no message, say) is folded in its turn, after the job
// before it; the stage after it, which does not batch, is only then asked.
BOOST_AUTO_TEST_CASE(a_batching_stage_answering_at_once_keeps_its_place) {
  auto data = phaseBit(Phase::EndOfData);
  std::vector<PipelineStage> stages;
  stages.push_back(entry(std::make_unique<FixedStage>("job", data, Verdict::proceed("j"), true, true)));
  stages.push_back(entry(std::make_unique<FixedStage>("at_once", data, Verdict::proceed("a"), false, true)));
  auto after_owned = std::make_unique<FixedStage>("after", data, Verdict::proceed("b"), true, false);
  auto* after = after_owned.get();
  stages.push_back(entry(std::move(after_owned)));
  auto pipeline = Pipeline::make(std::move(stages));
  DeferredRunner runner;
  std::optional<PhaseResult> result;
  runPhase(*pipeline, runner, Phase::EndOfData, result);
  BOOST_REQUIRE(runner.pending.size() == 1u);
  BOOST_TEST(after->calls == 0);
  runner.runNext();
  BOOST_TEST(after->calls == 1);
  BOOST_REQUIRE(runner.pending.size() == 1u);
  runner.runNext();
  BOOST_REQUIRE(result);
  BOOST_REQUIRE(result->outcomes.size() == 3u);
  BOOST_TEST(result->outcomes[0].stage == "job");
  BOOST_TEST(result->outcomes[1].stage == "at_once");
  BOOST_TEST(result->outcomes[2].stage == "after");
}

BOOST_AUTO_TEST_CASE(a_run_keeps_its_pipeline_alive) {
  std::vector<PipelineStage> stages;
  stages.push_back(entry(std::make_unique<FixedStage>("job", phaseBit(Phase::Rcpt), Verdict::proceed(), true)));
  auto pipeline = Pipeline::make(std::move(stages));
  DeferredRunner runner;
  bool done = false;
  StageInput input;
  input.phase = Phase::Rcpt;
  pipeline->run(input, runner, [&](PhaseResult) { done = true; });
  pipeline.reset();  // a reload replaced it while the job ran
  runner.runNext();
  BOOST_TEST(done);
}

BOOST_AUTO_TEST_CASE(max_message_bytes_is_the_smallest_limit) {
  class Limit final : public Stage {
   public:
    explicit Limit(uint64_t limit) : limit_(limit) {}
    std::string_view name() const override { return "limit"; }
    PhaseMask phases() const override { return 0; }
    Step check(const StageInput&) const override { return Verdict::proceed(); }
    std::optional<uint64_t> maxMessageBytes() const override { return limit_; }
    uint64_t limit_;
  };
  std::vector<PipelineStage> stages;
  stages.push_back(entry(std::make_unique<Limit>(500)));
  stages.push_back(entry(std::make_unique<Limit>(300)));
  BOOST_TEST(*Pipeline::make(std::move(stages))->maxMessageBytes() == 300u);
  BOOST_TEST(!Pipeline::make({})->maxMessageBytes());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
