// Greylisting's decisions, without a store or a clock: first sighting, early retry, retry after
// the delay, the retry window and expiry, auto-allowed clients, and the triplet's keys.
#include <boost/test/unit_test.hpp>

#include "filters/greylist/greylist_policy.h"
#include "filters/greylist/sqlite_store.h"
#include "tests/unit/temp_directory.h"

namespace mailgate {
namespace {

GreylistPolicy policy() {
  GreylistPolicy p;
  p.delay = std::chrono::seconds(300);
  p.retry_window = std::chrono::seconds(3600);
  p.expire = std::chrono::seconds(86400);
  p.auto_allow_after = 3;
  return p;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(greylist_policy)

BOOST_AUTO_TEST_CASE(first_attempt_then_early_retry_then_retry_after_the_delay) {
  auto first = decideGreylist(policy(), std::nullopt, 0, 1000);
  BOOST_TEST(!first.pass);
  BOOST_TEST(first.retry_in == 300);
  BOOST_TEST(first.triplet.first_seen == 1000);
  BOOST_TEST(first.triplet_ttl == 3600);

  auto early = decideGreylist(policy(), first.triplet, 0, 1100);
  BOOST_TEST(!early.pass);
  BOOST_TEST(early.retry_in == 200);
  BOOST_TEST(early.triplet.first_seen == 1000);  // an early retry does not restart the clock

  auto later = decideGreylist(policy(), early.triplet, 0, 1300);
  BOOST_TEST(later.pass);
  BOOST_TEST(later.triplet.passes == 1);
  BOOST_TEST(later.client_passed);
  BOOST_TEST(later.triplet_ttl == 86400);

  auto again = decideGreylist(policy(), later.triplet, 1, 5000);
  BOOST_TEST(again.pass);
  BOOST_TEST(!again.client_passed);  // a client counts each triplet once
}

BOOST_AUTO_TEST_CASE(a_retry_after_the_window_starts_over_and_a_passed_triplet_expires) {
  TripletState seen{1000, 1000, 0};
  auto late = decideGreylist(policy(), seen, 0, 1000 + 3601);
  BOOST_TEST(!late.pass);
  BOOST_TEST(late.triplet.first_seen == 1000 + 3601);
  TripletState passed{1000, 2000, 4};
  BOOST_TEST(decideGreylist(policy(), passed, 0, 2000 + 86400).pass);
  BOOST_TEST(!decideGreylist(policy(), passed, 0, 2000 + 86401).pass);
}

BOOST_AUTO_TEST_CASE(a_client_that_passed_often_enough_is_allowed_for_every_sender) {
  BOOST_TEST(!decideGreylist(policy(), std::nullopt, 2, 1000).pass);
  auto allowed = decideGreylist(policy(), std::nullopt, 3, 1000);
  BOOST_TEST(allowed.pass);
  GreylistPolicy never = policy();
  never.auto_allow_after = 0;
  BOOST_TEST(!decideGreylist(never, std::nullopt, 1000, 1000).pass);
}

BOOST_AUTO_TEST_CASE(triplets_use_the_client_network_and_lowercase_addresses) {
  auto keys = greylistKeys("192.0.2.77", "Alice@Example.COM", "User@Example.org");
  BOOST_TEST(keys.network == "192.0.2.0/24");
  BOOST_TEST(keys.triplet == "grey:t:192.0.2.0/24 alice@example.com user@example.org");
  BOOST_TEST(keys.client == "grey:c:192.0.2.0/24");
  BOOST_TEST(greylistKeys("2001:db8:1:2:3::9", "", "u@example.org").network == "2001:db8:1:2::/64");
  BOOST_TEST(greylistKeys("192.0.2.1", "", "u@example.org").triplet == "grey:t:192.0.2.0/24 <> u@example.org");
}

BOOST_AUTO_TEST_CASE(the_sqlite_store_keeps_what_the_policy_said_across_reopening) {
  test::TempDirectory folder;
  std::string path = folder.path() + "/state/greylist.sqlite";
  auto keys = greylistKeys("192.0.2.7", "a@example.com", "u@example.org");
  int64_t now = 1000;
  GreylistStore::Decide decide = [&](const std::optional<TripletState>& triplet, int64_t client_passes) {
    return decideGreylist(policy(), triplet, client_passes, now);
  };
  {
    SqliteStore store(path);
    auto first = store.applyNow(keys, decide);
    BOOST_REQUIRE(first);
    BOOST_TEST(!first->pass);
  }
  // The TTLs are kept against the real clock; the decisions use `now` (the test's clock).
  SqliteStore reopened(path);
  now = 1301;
  auto retry = reopened.applyNow(keys, decide);
  BOOST_REQUIRE(retry);
  BOOST_TEST(retry->pass, retry->why);
  BOOST_TEST(retry->why == "retried after 301 s");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
