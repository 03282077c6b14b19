#include "filters/greylist/greylist_policy.h"

#include "gateway/util/ip_address.h"

namespace mailgate {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

}  // namespace

GreylistKeys greylistKeys(std::string_view client_ip, std::string_view sender, std::string_view recipient) {
  GreylistKeys keys;
  auto address = IpAddress::parse(client_ip);
  if (address) {
    unsigned bits = address->v4 ? 24 : 64;
    keys.network = Cidr{masked(*address, bits), bits}.text();
  } else {
    keys.network = std::string(client_ip);
  }
  std::string who = sender.empty() ? std::string("<>") : lower(sender);
  keys.triplet = "grey:t:" + keys.network + " " + who + " " + lower(recipient);
  keys.client = "grey:c:" + keys.network;
  return keys;
}

GreylistDecision decideGreylist(const GreylistPolicy& policy, const std::optional<TripletState>& stored,
                                int64_t client_passes, int64_t now) {
  GreylistDecision decision;
  const int64_t delay = policy.delay.count(), window = policy.retry_window.count(), expire = policy.expire.count();
  std::optional<TripletState> known = stored;
  // A triplet that never passed is forgotten after the retry window; one that passed, after
  // `expire` since its last pass (the store drops them too, but need not do it on time).
  if (known && known->passes == 0 && now - known->first_seen > window) known.reset();
  if (known && known->passes > 0 && now - known->last_seen > expire) known.reset();
  if (policy.auto_allow_after > 0 && client_passes >= policy.auto_allow_after) {
    decision.pass = true;
    decision.why = "client network passed " + std::to_string(client_passes) + " times: allowed";
    decision.triplet = known.value_or(TripletState{now, now, 0});
    decision.triplet.last_seen = now;
    decision.triplet.passes += 1;
    decision.triplet_ttl = expire;
    decision.client_passed = true;
    decision.client_ttl = expire;
    return decision;
  }
  if (!known) {
    decision.retry_in = delay;
    decision.why = "new triplet";
    decision.triplet = TripletState{now, now, 0};
    decision.triplet_ttl = window;
    return decision;
  }
  if (known->passes == 0 && now - known->first_seen < delay) {
    decision.retry_in = delay - (now - known->first_seen);
    decision.why = "retried too early (" + std::to_string(now - known->first_seen) + " s after the first attempt)";
    decision.triplet = *known;
    decision.triplet.last_seen = now;
    decision.triplet_ttl = window - (now - known->first_seen);
    return decision;
  }
  decision.pass = true;
  decision.why = known->passes == 0 ? "retried after " + std::to_string(now - known->first_seen) + " s"
                                    : "known triplet (passed " + std::to_string(known->passes) + " times)";
  decision.triplet = *known;
  decision.triplet.last_seen = now;
  decision.triplet.passes += 1;
  decision.triplet_ttl = expire;
  decision.client_passed = known->passes == 0;  // a client counts each triplet it got through once
  decision.client_ttl = expire;
  return decision;
}

}  // namespace mailgate
