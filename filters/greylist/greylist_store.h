#pragma once
// Where greylisting keeps its triplets: the embedded SQLite file (one gateway) or Redis (several
// gateways behind a load balancer, one state). Each check reads the triplet's and the client's
// state, lets the policy decide, and writes back what it said, without blocking the loop: SQLite
// on the thread pool, Redis over a stream on the session's loop.

#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "filters/greylist/greylist_policy.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class GreylistStore : public std::enable_shared_from_this<GreylistStore> {
 public:
  using Decide = std::function<GreylistDecision(const std::optional<TripletState>& triplet, int64_t client_passes)>;
  using Done = std::move_only_function<void(std::expected<GreylistDecision, std::string>)>;
  virtual ~GreylistStore() = default;
  // `done` runs on the loop, once: with the decision, or with why the store could not be used.
  // The returned function (on the loop) gives up on the check: `done` is then not called.
  virtual std::move_only_function<void()> apply(const StageInput& input, const GreylistKeys& keys, Decide decide,
                                                Done done) const = 0;
  virtual std::string describe() const = 0;  // "sqlite var/state/greylist.sqlite", "redis 127.0.0.1:6379"
};

}  // namespace mailgate
