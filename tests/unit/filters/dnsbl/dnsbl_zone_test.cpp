// The dnsbl stage's zone entries in postscreen's syntax: names, filters and weights as Postfix
// reads them, and every malformed entry refused with what is wrong.
#include <boost/test/unit_test.hpp>

#include "filters/dnsbl/dnsbl_zone.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(dnsbl_zone)

BOOST_AUTO_TEST_CASE(a_bare_name_counts_any_loopback_answer_with_weight_one) {
  auto zone = DnsblZone::parse("BL.Example.NET");
  BOOST_REQUIRE(zone);
  BOOST_TEST(zone->name() == "bl.example.net");
  BOOST_TEST(zone->weight() == 1);
  BOOST_TEST(zone->counts("127.0.0.2"));
  BOOST_TEST(zone->counts("127.255.3.1"));
  BOOST_TEST(!zone->counts("8.8.8.8"));
  BOOST_TEST(!zone->counts("128.0.0.2"));
}

BOOST_AUTO_TEST_CASE(filters_with_ranges_and_lists_and_weights) {
  auto zone = DnsblZone::parse("bl.example.net=127.0.0.[2..11]*3");
  BOOST_REQUIRE(zone);
  BOOST_TEST(zone->weight() == 3);
  BOOST_TEST(zone->counts("127.0.0.2"));
  BOOST_TEST(zone->counts("127.0.0.11"));
  BOOST_TEST(!zone->counts("127.0.0.1"));
  BOOST_TEST(!zone->counts("127.0.0.12"));
  BOOST_TEST(!zone->counts("127.0.1.2"));

  auto listed = DnsblZone::parse("list.example=127.0.[0..255].[2;4;9..10]*2");
  BOOST_REQUIRE(listed);
  BOOST_TEST(listed->counts("127.0.7.4"));
  BOOST_TEST(listed->counts("127.0.200.10"));
  BOOST_TEST(!listed->counts("127.0.7.3"));

  auto exact = DnsblZone::parse("x.example=127.0.0.2");
  BOOST_REQUIRE(exact);
  BOOST_TEST(exact->counts("127.0.0.2"));
  BOOST_TEST(!exact->counts("127.0.0.3"));
}

BOOST_AUTO_TEST_CASE(negative_weights_make_allow_lists) {
  auto zone = DnsblZone::parse("wl.example.net=127.0.[0..255].[2..255]*-5");
  BOOST_REQUIRE(zone);
  BOOST_TEST(zone->weight() == -5);
  BOOST_TEST(zone->counts("127.0.9.2"));
  auto bare = DnsblZone::parse("wl.example.net*-2");
  BOOST_REQUIRE(bare);
  BOOST_TEST(bare->weight() == -2);
}

BOOST_AUTO_TEST_CASE(malformed_entries_are_refused_naming_the_entry) {
  for (const char* bad : {"", "bl..example", "bl.example*", "bl.example*x", "bl.example*-0", "bl.example*1001",
                          "bl.example=", "bl.example=127.0.0", "bl.example=127.0.0.256", "bl.example=127.0.0.[2..]",
                          "bl.example=127.0.0.[9..2]", "bl.example=127.0.0.[2..11", "bl.example=10.0.0.2",
                          "bl.example=127.0.0.2.5", "bl example", "bl.example=127.0.0.02"}) {
    auto zone = DnsblZone::parse(bad);
    BOOST_TEST(!zone, bad);
    if (!zone) BOOST_TEST(zone.error().find("zone \"" + std::string(bad) + "\"") == 0, zone.error());
  }
}

BOOST_AUTO_TEST_CASE(list_answers_are_loopback_addresses) {
  BOOST_TEST(isListAnswer("127.0.0.2"));
  BOOST_TEST(!isListAnswer("8.8.8.8"));
  BOOST_TEST(!isListAnswer("::1"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
