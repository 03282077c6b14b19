#pragma once
// The Jobs of neighbouring batching stages (Stage::batchesJobs) run as one pool job: one trip to
// the pool and back instead of one each. They run in order; the batch stops after the first
// verdict that would end the phase, or when its stop token is requested. Each verdict is handed
// over as soon as it is known, so that after a timeout the loop still folds the ones that finished
// and blames the one that was running.

#include <chrono>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "gateway/pipeline/stage.h"
#include "gateway/util/duration.h"

namespace mailgate {

struct PipelineStage;

class JobBatch {
 public:
  using Took = std::chrono::steady_clock::duration;
  using Result = std::pair<Verdict, Took>;

  // What the pool thread has finished, taken once by the loop; what finishes after is dropped.
  class Progress {
   public:
    bool add(Verdict verdict, Took took);  // false once taken: stop
    std::vector<Result> take();

   private:
    std::mutex mutex_;
    std::vector<Result> results_;
    bool taken_ = false;
  };

  // `stops`: whether this member's refusal ends the phase (not shadowed, not allowed).
  void add(const PipelineStage* entry, Job job, bool stops);
  std::size_t size() const { return jobs_.size(); }
  Job takeOnlyJob() { return std::move(jobs_.front()); }
  // The members' timeouts added up: each may take its own after the ones before it.
  Duration timeout() const { return timeout_; }
  const std::vector<const PipelineStage*>& members() const { return members_; }
  std::shared_ptr<Progress> progress() const { return progress_; }
  // The one pool job; its own verdict means nothing (the members' are in progress()).
  Job job() &&;

 private:
  std::vector<const PipelineStage*> members_;
  std::vector<Job> jobs_;
  std::vector<bool> stops_;
  Duration timeout_{0};
  std::shared_ptr<Progress> progress_ = std::make_shared<Progress>();
};

}  // namespace mailgate
