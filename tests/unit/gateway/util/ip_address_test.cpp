// IP addresses and networks: parsing, IPv4-mapped addresses taken as IPv4, strict networks for
// lists, reverse names for DNS lists and PTR queries.
#include <boost/test/unit_test.hpp>

#include "gateway/util/ip_address.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(ip_address)

BOOST_AUTO_TEST_CASE(cidr_matching) {
  BOOST_TEST(cidrContains("127.0.0.0/8", "127.1.2.3"));
  BOOST_TEST(!cidrContains("127.0.0.0/8", "128.0.0.1"));
  BOOST_TEST(cidrContains("192.0.2.0/25", "192.0.2.127"));
  BOOST_TEST(!cidrContains("192.0.2.0/25", "192.0.2.128"));
  BOOST_TEST(cidrContains("0.0.0.0/0", "203.0.113.9"));
  BOOST_TEST(cidrContains("::1/128", "::1"));
  BOOST_TEST(!cidrContains("::1/128", "::2"));
  BOOST_TEST(cidrContains("2001:db8::/32", "2001:db8:ffff::1"));
  BOOST_TEST(cidrContains("127.0.0.0/8", "::ffff:127.0.0.1"));
  BOOST_TEST(!cidrContains("127.0.0.0/8", "::1"));
  BOOST_TEST(cidrContains("10.0.0.5", "10.0.0.5"));
  BOOST_TEST(!cidrContains("10.0.0.0/33", "10.0.0.5"));
}

BOOST_AUTO_TEST_CASE(mapped_addresses_are_ipv4) {
  auto mapped = IpAddress::parse("::ffff:192.0.2.1");
  BOOST_REQUIRE(mapped);
  BOOST_TEST(mapped->v4);
  BOOST_TEST(mapped->text() == "192.0.2.1");
  BOOST_TEST(!IpAddress::parse("192.0.2.256"));
  BOOST_TEST(!IpAddress::parse(""));
  BOOST_TEST(!IpAddress::parse("example.com"));
}

BOOST_AUTO_TEST_CASE(networks_are_strict_about_host_bits) {
  BOOST_TEST(Cidr::parse("192.0.2.0/24").has_value());
  BOOST_TEST(!Cidr::parse("192.0.2.1/24"), "a typo that would widen a list is refused");
  BOOST_TEST(!Cidr::parse("192.0.2.0/33"));
  BOOST_TEST(!Cidr::parse("192.0.2.0/"));
  BOOST_TEST(!Cidr::parse("192.0.2.0/x"));
  auto single = Cidr::parse("2001:db8::1");
  BOOST_REQUIRE(single);
  BOOST_TEST(single->bits == 128u);
  auto mapped = Cidr::parse("::ffff:192.0.2.0/120");
  BOOST_REQUIRE(mapped);
  BOOST_TEST(mapped->network.v4);
  BOOST_TEST(mapped->bits == 24u);
  BOOST_TEST(mapped->contains(*IpAddress::parse("192.0.2.77")));
  BOOST_TEST(!mapped->contains(*IpAddress::parse("2001:db8::1")));
}

BOOST_AUTO_TEST_CASE(reversed_names_follow_rfc_5782) {
  BOOST_TEST(IpAddress::parse("192.0.2.1")->reversed() == "1.2.0.192");
  BOOST_TEST(IpAddress::parse("2001:db8::1")->reversed() ==
             "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
