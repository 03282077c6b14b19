#include "gateway/logtool/ip_network.h"

#include <boost/test/unit_test.hpp>

namespace mailgate::logtool {
namespace {

IpNetwork network(std::string_view text) {
  auto parsed = IpNetwork::parse(text);
  BOOST_REQUIRE_MESSAGE(parsed.has_value(), text);
  return *parsed;
}

BOOST_AUTO_TEST_SUITE(logtool_ip_network)

BOOST_AUTO_TEST_CASE(an_address_alone_matches_itself) {
  BOOST_TEST(network("192.0.2.7").contains("192.0.2.7"));
  BOOST_TEST(!network("192.0.2.7").contains("192.0.2.8"));
  BOOST_TEST(network("2001:db8::1").contains("2001:db8:0::1"));
  BOOST_TEST(!network("2001:db8::1").contains("2001:db8::2"));
}

BOOST_AUTO_TEST_CASE(ipv4_networks) {
  auto net = network("192.0.2.0/24");
  BOOST_TEST(net.contains("192.0.2.0"));
  BOOST_TEST(net.contains("192.0.2.255"));
  BOOST_TEST(!net.contains("192.0.3.0"));
  BOOST_TEST(network("10.0.0.0/8").contains("10.255.1.2"));
  BOOST_TEST(network("0.0.0.0/0").contains("203.0.113.9"));
  BOOST_TEST(!network("0.0.0.0/0").contains("2001:db8::1"));  // a family never matches the other
  // Host bits past the prefix are ignored.
  BOOST_TEST(network("192.0.2.77/24").contains("192.0.2.1"));
  BOOST_TEST(network("192.0.2.128/25").contains("192.0.2.200"));
  BOOST_TEST(!network("192.0.2.128/25").contains("192.0.2.127"));
}

BOOST_AUTO_TEST_CASE(ipv6_networks) {
  auto net = network("2001:db8:5::/48");
  BOOST_TEST(net.contains("2001:db8:5:1::9"));
  BOOST_TEST(net.contains("2001:db8:5:ffff:ffff:ffff:ffff:ffff"));
  BOOST_TEST(!net.contains("2001:db8:6::1"));
  BOOST_TEST(!net.contains("192.0.2.1"));
  BOOST_TEST(network("[2001:db8::]/32").contains("2001:db8:ffff::1"));
  BOOST_TEST(network("2001:db8::/31").contains("2001:db9::1"));
}

BOOST_AUTO_TEST_CASE(ipv4_mapped_clients_are_ipv4) {
  BOOST_TEST(network("192.0.2.0/24").contains("::ffff:192.0.2.9"));
  BOOST_TEST(summaryNetworkOf("::ffff:192.0.2.9") == "192.0.2.0/24");
}

BOOST_AUTO_TEST_CASE(what_is_not_a_network_is_refused) {
  for (const char* text : {"", "192.0.2", "192.0.2.0/33", "2001:db8::/129", "192.0.2.0/", "192.0.2.0/x",
                           "example.org", "192.0.2.0/24/1", "::g"})
    BOOST_TEST(!IpNetwork::parse(text).has_value(), text);
  BOOST_TEST(!network("192.0.2.0/24").contains("not an address"));
  BOOST_TEST(!network("192.0.2.0/24").contains(""));
}

BOOST_AUTO_TEST_CASE(summary_networks_are_slash_24_and_slash_48) {
  BOOST_TEST(summaryNetworkOf("192.0.2.77") == "192.0.2.0/24");
  BOOST_TEST(summaryNetworkOf("2001:db8:5:1::9") == "2001:db8:5::/48");
  BOOST_TEST(summaryNetworkOf("::1") == "::/48");
  BOOST_TEST(summaryNetworkOf("unknown") == "unknown");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
