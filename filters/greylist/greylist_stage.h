#pragma once
// greylist: at RCPT, a (client /24 or /64, sender, recipient) triplet seen for the first time gets
// 451 4.7.1 and passes when retried after `delay` (filters/greylist/greylist_policy.h). Legitimate
// servers retry; most spamware does not. Skipped for clients the lists stage allowed, and for
// senders whose domain passed SPF and is one of `skip_spf_pass_domains`. The store never stops
// mail: when it cannot be read or written (Redis down, the file unwritable) the recipient passes,
// and the record and the operator's log say why.

#include <memory>
#include <string>
#include <vector>

#include "filters/greylist/greylist_store.h"
#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class GreylistStage final : public Stage {
 public:
  struct Options {
    GreylistPolicy policy;
    std::vector<std::string> skip_spf_pass_domains;  // lowercased; subdomains too
    Duration store_timeout = std::chrono::seconds(5);
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  GreylistStage(std::shared_ptr<GreylistStore> store, Options options)
      : store_(std::move(store)), options_(std::move(options)) {}

  std::string_view name() const override { return "greylist"; }
  PhaseMask phases() const override { return phaseBit(Phase::Rcpt); }
  Step check(const StageInput& input) const override;

 private:
  std::shared_ptr<GreylistStore> store_;
  Options options_;
};

}  // namespace mailgate
