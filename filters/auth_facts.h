#pragma once
// What the authentication stages found out about one transaction, for the stages that build on
// it: DMARC (RFC 7489 §4.2) needs SPF's and DKIM's results and the domains they were for. Filled
// by the spf and dkim stages (SPF's check finishes on the thread pool), read by dmarc; guarded by
// a mutex because writers and readers may be on different threads.

#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mailgate {

struct SpfFact {
  std::string result;  // RFC 8601 spf result: pass, fail, softfail, neutral, none, temperror, permerror
  std::string domain;  // the domain checked: MAIL FROM's, or the HELO name for the null sender
  bool helo = false;   // true when `domain` is the HELO identity (RFC 7208 §2.3)
};

struct DkimFact {
  std::string result;  // RFC 8601 dkim result: pass, fail, policy, neutral, temperror, permerror
  std::string domain;  // d=
  std::string selector;  // s=
};

class AuthFacts {
 public:
  void setSpf(SpfFact fact) {
    std::lock_guard lock(mutex_);
    spf_ = std::move(fact);
  }
  void setDkim(std::vector<DkimFact> facts) {
    std::lock_guard lock(mutex_);
    dkim_ = std::move(facts);
    dkim_checked_ = true;
  }
  std::optional<SpfFact> spf() const {
    std::lock_guard lock(mutex_);
    return spf_;
  }
  std::vector<DkimFact> dkim() const {
    std::lock_guard lock(mutex_);
    return dkim_;
  }
  bool dkimChecked() const {
    std::lock_guard lock(mutex_);
    return dkim_checked_;
  }

 private:
  mutable std::mutex mutex_;
  std::optional<SpfFact> spf_;
  std::vector<DkimFact> dkim_;
  bool dkim_checked_ = false;
};

}  // namespace mailgate
