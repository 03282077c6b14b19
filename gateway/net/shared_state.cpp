#include "gateway/net/shared_state.h"

#include <chrono>
#include <cstdio>

#include <sys/resource.h>


namespace mailgate {

ConnectionLimiter::Verdict ConnectionLimiter::acquire(const std::string& ip, uint32_t max_total,
                                                      uint32_t max_per_client) {
  if (total_.fetch_add(1) >= max_total) {
    total_.fetch_sub(1);
    return Verdict::TooManyTotal;
  }
  std::lock_guard lock(mutex_);
  uint32_t& count = per_client_[ip];
  if (count >= max_per_client) {
    if (count == 0) per_client_.erase(ip);
    total_.fetch_sub(1);
    return Verdict::TooManyFromClient;
  }
  ++count;
  return Verdict::Accepted;
}

void ConnectionLimiter::release(const std::string& ip) {
  {
    std::lock_guard lock(mutex_);
    auto found = per_client_.find(ip);
    if (found != per_client_.end() && --found->second == 0) per_client_.erase(found);
  }
  total_.fetch_sub(1);
}

std::string SharedState::nextSessionId() {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
  char id[32];
  std::snprintf(id, sizeof id, "%08llX%06llX", static_cast<unsigned long long>(seconds) & 0xffffffffULL,
                static_cast<unsigned long long>(sessions_.fetch_add(1)) & 0xffffffULL);
  return id;
}

namespace {
// How often a lasting shortage of descriptors is reported.
constexpr std::chrono::minutes descriptor_shortage_report_interval{1};
}  // namespace

void SharedState::descriptorsRanOut() {
  std::lock_guard lock(shortage_mutex_);
  ++shortage_unreported_;
  auto now = std::chrono::steady_clock::now();
  if (shortage_reported_ && now - *shortage_reported_ < descriptor_shortage_report_interval) return;
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  std::fprintf(stderr,
               "mailgate: out of open files (RLIMIT_NOFILE %llu): accept failed %llu time(s) since the last report (each "
               "time the client waiting longest is told 421); accepting pauses until sessions close (README \"Many connections\": LimitNOFILE=, ulimit -n)\n",
               static_cast<unsigned long long>(limit.rlim_cur), static_cast<unsigned long long>(shortage_unreported_));
  shortage_reported_ = now;
  shortage_unreported_ = 0;
}

}  // namespace mailgate
