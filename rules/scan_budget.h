#pragma once
// What one message's scan may spend: CPU time of the thread that scans, and a stop request from
// outside (the rules stage's timeout). RuleSet::scan looks at it before each match, and a PCRE2
// callout looks at it at each start position inside a match (regex.cpp), so a hostile message
// holds a pool thread for the budget and no longer. SpamAssassin bounds the same risk with its
// per-message time_limit.

#include <chrono>
#include <optional>
#include <stop_token>

namespace mailgate::rules {

struct ScanLimits {
  std::optional<std::chrono::nanoseconds> cpu;  // none: no limit (tests, benchmarks, lint)
  std::stop_token stop;                         // requested: give up at the next look
};

class ScanBudget {
 public:
  enum class Stop { None, Spent, Cancelled };

  explicit ScanBudget(ScanLimits limits = {});

  // True once the CPU time is spent or a stop was requested, and from then on. Cheap enough to
  // call at every start position of a match: the thread's CPU clock is a system call (about a
  // microsecond), so it is read only when the wall time since it was last read could hold the
  // time that is left; the wall clocks are read without one (vDSO).
  bool exhausted();
  Stop stopped() const { return stopped_; }

 private:
  using Nanos = std::chrono::nanoseconds;
  void readCpuClock();

  std::optional<Nanos> cpu_;
  std::stop_token stop_;
  Stop stopped_ = Stop::None;
  Nanos cpu_start_{0};
  Nanos left_{0};       // CPU time left when the CPU clock was last read
  Nanos coarse_at_{0};  // the wall clocks then
  Nanos fine_at_{0};
};

}  // namespace mailgate::rules
