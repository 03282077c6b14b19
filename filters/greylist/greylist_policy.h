#pragma once
// What greylisting decides (Evan Harris's triplets, as Postgrey does them): a (client network,
// sender, recipient) triplet seen for the first time is asked to come back later; a retry after
// `delay` and within `retry_window` passes, and the triplet is then let through at once for
// `expire` after its last pass; a client network that passed `auto_allow_after` times is let
// through for every sender. Pure: the stores read and write what it says.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate {

struct GreylistPolicy {
  std::chrono::seconds delay{300};                 // Postgrey's default: 5 minutes
  std::chrono::seconds retry_window{2 * 24 * 3600};  // Postgrey's --max-age for a retry: 2 days
  std::chrono::seconds expire{35 * 24 * 3600};     // Postgrey's --max-age: 35 days
  int64_t auto_allow_after = 5;                    // Postgrey's --auto-whitelist-clients; 0: never
};

// One triplet's state, times in seconds since the epoch.
struct TripletState {
  int64_t first_seen = 0;
  int64_t last_seen = 0;
  int64_t passes = 0;  // 0: not through yet
};

struct GreylistKeys {
  std::string triplet;  // "grey:t:192.0.2.0/24 sender@example.com user@example.org"
  std::string client;   // "grey:c:192.0.2.0/24"
  std::string network;  // "192.0.2.0/24", for the record
};

// The client's network (/24 for IPv4, /64 for IPv6: pools of outgoing servers retry from a
// neighbour), the sender ("<>" for the null sender) and the recipient, lowercased.
GreylistKeys greylistKeys(std::string_view client_ip, std::string_view sender, std::string_view recipient);

struct GreylistDecision {
  bool pass = false;
  int64_t retry_in = 0;  // !pass: seconds until a retry passes
  std::string why;       // "new triplet", "retried too early", "retried after 301 s", ...
  // What the store keeps: the triplet (for `triplet_ttl` seconds), and one more pass for the
  // client when `client_passed`.
  TripletState triplet;
  int64_t triplet_ttl = 0;
  bool client_passed = false;
  int64_t client_ttl = 0;
};

GreylistDecision decideGreylist(const GreylistPolicy& policy, const std::optional<TripletState>& stored,
                                int64_t client_passes, int64_t now);

}  // namespace mailgate
