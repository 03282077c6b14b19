#include "rules/scan_budget.h"

#include <time.h>

namespace mailgate::rules {
namespace {

std::chrono::nanoseconds readClock(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

// The coarse clock is the cheapest to read (a third of the precise one) but lags by up to its
// resolution (a scheduler tick, 1 to 4 ms).
std::chrono::nanoseconds coarseResolution() {
  static const std::chrono::nanoseconds resolution = [] {
    timespec step{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &step);
    return std::chrono::seconds(step.tv_sec) + std::chrono::nanoseconds(step.tv_nsec);
  }();
  return resolution;
}

}  // namespace

ScanBudget::ScanBudget(ScanLimits limits) : cpu_(limits.cpu), stop_(std::move(limits.stop)) {
  if (!cpu_) return;
  cpu_start_ = readClock(CLOCK_THREAD_CPUTIME_ID);
  left_ = *cpu_;
  coarse_at_ = readClock(CLOCK_MONOTONIC_COARSE);
  fine_at_ = readClock(CLOCK_MONOTONIC);
}

void ScanBudget::readCpuClock() {
  left_ = *cpu_ - (readClock(CLOCK_THREAD_CPUTIME_ID) - cpu_start_);
  coarse_at_ = readClock(CLOCK_MONOTONIC_COARSE);
  fine_at_ = readClock(CLOCK_MONOTONIC);
}

bool ScanBudget::exhausted() {
  if (stopped_ != Stop::None) return true;
  if (stop_.stop_requested()) {
    stopped_ = Stop::Cancelled;
    return true;
  }
  if (!cpu_) return false;
  // One thread cannot use more CPU time than wall time passes: until the time left has passed
  // on a wall clock, the budget cannot be spent. Within two ticks of the end the precise clock
  // decides, so that the CPU clock is not read at every call there.
  const Nanos tick = coarseResolution();
  if (left_ >= 2 * tick) {
    if (readClock(CLOCK_MONOTONIC_COARSE) - coarse_at_ + tick < left_) return false;
  } else if (left_ > Nanos::zero()) {
    if (readClock(CLOCK_MONOTONIC) - fine_at_ < left_) return false;
  }
  readCpuClock();
  if (left_ > Nanos::zero()) return false;
  stopped_ = Stop::Spent;
  return true;
}

}  // namespace mailgate::rules
