#include "gateway/pipeline/job_batch.h"

#include "gateway/pipeline/pipeline.h"

namespace mailgate {

bool JobBatch::Progress::add(Verdict verdict, Took took) {
  std::lock_guard lock(mutex_);
  if (taken_) return false;
  results_.emplace_back(std::move(verdict), took);
  return true;
}

std::vector<JobBatch::Result> JobBatch::Progress::take() {
  std::lock_guard lock(mutex_);
  taken_ = true;
  return std::move(results_);
}

void JobBatch::add(const PipelineStage* entry, Job job, bool stops) {
  members_.push_back(entry);
  jobs_.push_back(std::move(job));
  stops_.push_back(stops);
  timeout_ += entry->timeout;
}

Job JobBatch::job() && {
  return [jobs = std::move(jobs_), stops = std::move(stops_), progress = progress_](std::stop_token stop) mutable {
    for (std::size_t i = 0; i < jobs.size() && !stop.stop_requested(); ++i) {
      auto started = std::chrono::steady_clock::now();
      Verdict verdict = jobs[i](stop);
      bool ends = verdict.ends() && stops[i];
      if (!progress->add(std::move(verdict), std::chrono::steady_clock::now() - started) || ends) break;
    }
    return Verdict::proceed();
  };
}

}  // namespace mailgate
