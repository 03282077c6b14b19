#include <boost/test/unit_test.hpp>

#include <sys/resource.h>

#include "gateway/net/descriptor_limit.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(descriptor_limit)

BOOST_AUTO_TEST_CASE(two_per_connection_plus_the_rest_and_each_worker_s_loop_and_listeners) {
  Config config = embeddedDefaultConfig();
  config.server.max_connections = 1000;
  config.server.listen = {HostPort{"127.0.0.1", 25}};
  config.server.listen_tls = {HostPort{"127.0.0.1", 465}};
  BOOST_TEST(descriptorsNeeded(config, 3) == 2000u + 256u + 3u * (4u + 2u));
}

BOOST_AUTO_TEST_CASE(a_hard_limit_too_low_is_named_with_the_figures_and_the_fix) {
  DescriptorLimit enough{.needed = 2266, .soft_before = 1024, .soft = 2266, .hard = 4096};
  BOOST_TEST(descriptorShortfall(enough, 1000).empty());
  DescriptorLimit low{.needed = 2266, .soft_before = 1024, .soft = 1024, .hard = 1024};
  std::string warning = descriptorShortfall(low, 1000);
  BOOST_TEST(warning.find("server.max_connections = 1000 needs 2266 open files") != std::string::npos, warning);
  BOOST_TEST(warning.find("hard limit (RLIMIT_NOFILE) is 1024") != std::string::npos, warning);
  // (1024 - 266 besides the connections) / 2 per connection.
  BOOST_TEST(warning.find("about 379 connections fit") != std::string::npos, warning);
  BOOST_TEST(warning.find("LimitNOFILE=2266") != std::string::npos, warning);
  BOOST_TEST(warning.find("ulimit -n 2266") != std::string::npos, warning);
}

BOOST_AUTO_TEST_CASE(the_soft_limit_is_raised_up_to_the_hard_limit_and_never_lowered) {
  rlimit saved{};
  ::getrlimit(RLIMIT_NOFILE, &saved);
  rlimit low{64, saved.rlim_max};
  BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  DescriptorLimit raised = raiseDescriptorLimit(100);
  BOOST_TEST(raised.soft_before == 64u);
  BOOST_TEST(raised.soft == 100u);
  BOOST_TEST(currentDescriptorLimit(0).soft == 100u);
  DescriptorLimit kept = raiseDescriptorLimit(80);
  BOOST_TEST(kept.soft == 100u);
  if (saved.rlim_max != RLIM_INFINITY) {
    DescriptorLimit capped = raiseDescriptorLimit(saved.rlim_max + 1000);
    BOOST_TEST(capped.soft == saved.rlim_max);
  }
  ::setrlimit(RLIMIT_NOFILE, &saved);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
