#pragma once
// Work off the event loop, on libuv's shared thread pool: `work` runs on a pool thread, `after`
// back on the loop that queued it (design.md §3).

#include <uv.h>

#include <functional>

#include "gateway/pipeline/pipeline.h"

namespace mailgate {

void queueWork(uv_loop_t* loop, std::move_only_function<void()> work, std::move_only_function<void()> after);

// The JobRunner of a worker's loop: each job on the pool, with a timer that answers nullopt
// (the stage timed out) if the job has not finished in time and asks the job to stop (its stop
// token); a job not started by then is not run, and a late result is dropped.
class UvJobRunner final : public JobRunner {
 public:
  explicit UvJobRunner(uv_loop_t* loop) : loop_(loop) {}
  void submit(Job job, Duration timeout, Done done) override;
  void await(Deferred deferred, Duration timeout, Done done) override;

 private:
  uv_loop_t* loop_;
};

}  // namespace mailgate
