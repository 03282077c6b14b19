#pragma once
// Greylisting state in Redis, shared by every gateway that points at it (`store =
// "redis://127.0.0.1:6379"`). Each check is one connection on the session's loop (the stages'
// NetworkAccess: nothing blocks, no thread waits) carrying two pipelined round trips, HMGET+GET
// then HSET+EXPIRE (+INCR+EXPIRE), with hiredis formatting the commands and parsing the replies.
// Two gateways racing on one triplet at the same second both write the same first sighting.

#include <string>

#include "filters/greylist/greylist_store.h"

namespace mailgate {

class RedisStore final : public GreylistStore {
 public:
  // How long connecting to Redis may take before the check passes without it.
  static constexpr uint64_t connect_timeout_ms = 2000;

  // "redis://127.0.0.1:6379", "redis://[::1]:6379" (an address, not a name: no lookup on the
  // loop); the error says what is wrong.
  static std::expected<std::string, std::string> endpointOf(std::string_view url);
  explicit RedisStore(std::string endpoint) : endpoint_(std::move(endpoint)) {}

  std::move_only_function<void()> apply(const StageInput& input, const GreylistKeys& keys, Decide decide,
                                        Done done) const override;
  std::string describe() const override { return "redis " + endpoint_; }

 private:
  std::string endpoint_;
};

}  // namespace mailgate
