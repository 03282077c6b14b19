#include <boost/test/unit_test.hpp>

#include "gateway/net/proxy_protocol.h"

namespace mailgate {
namespace {

std::string v2(unsigned char command, unsigned char family, std::string addresses) {
  std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
  header += static_cast<char>(0x20 | command);
  header += static_cast<char>(family);
  header += static_cast<char>(addresses.size() >> 8);
  header += static_cast<char>(addresses.size() & 0xff);
  return header + addresses;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(proxy_protocol)

BOOST_AUTO_TEST_CASE(v1_tcp4_and_tcp6) {
  auto header = parseProxyHeader("PROXY TCP4 192.0.2.7 10.0.0.1 40000 25\r\nEHLO x\r\n");
  BOOST_REQUIRE(header && *header);
  BOOST_TEST((*header)->length == 40u);
  BOOST_TEST(*(*header)->source_ip == "192.0.2.7");
  BOOST_TEST((*header)->source_port == 40000);
  header = parseProxyHeader("PROXY TCP6 2001:db8::7 2001:db8::1 1 25\r\n");
  BOOST_REQUIRE(header && *header);
  BOOST_TEST(*(*header)->source_ip == "2001:db8::7");
  header = parseProxyHeader("PROXY UNKNOWN whatever\r\n");
  BOOST_REQUIRE(header && *header);
  BOOST_TEST(!(*header)->source_ip);
}

BOOST_AUTO_TEST_CASE(v1_needs_more_then_completes_at_every_split) {
  std::string line = "PROXY TCP4 192.0.2.7 10.0.0.1 40000 25\r\n";
  for (std::size_t size = 0; size < line.size(); ++size) {
    auto partial = parseProxyHeader(line.substr(0, size));
    BOOST_TEST((partial && !*partial), "prefix of " << size);
  }
}

BOOST_AUTO_TEST_CASE(v1_malformed) {
  for (std::string bad : {"PROXY TCP4 192.0.2.777 10.0.0.1 1 25\r\n", "PROXY TCP4 192.0.2.7 10.0.0.1 1\r\n",
                          "PROXY TCP5 192.0.2.7 10.0.0.1 1 25\r\n", "PROXY TCP4 192.0.2.7 10.0.0.1 99999 25\r\n",
                          "PROXY TCP4 2001:db8::1 10.0.0.1 1 25\r\n", "EHLO client\r\n",
                          "PROXY TCP4 192.0.2.7 10.0.0.1 01 25\r\n"}) {
    BOOST_TEST(!parseProxyHeader(bad).has_value(), bad);
  }
  BOOST_TEST(!parseProxyHeader("PROXY " + std::string(200, 'x')).has_value());
}

BOOST_AUTO_TEST_CASE(v2_proxy_and_local) {
  std::string v4("\xc0\x00\x02\x07\x0a\x00\x00\x01\x9c\x40\x00\x19", 12);
  auto header = parseProxyHeader(v2(1, 0x11, v4) + "EHLO");
  BOOST_REQUIRE(header && *header);
  BOOST_TEST((*header)->length == 28u);
  BOOST_TEST(*(*header)->source_ip == "192.0.2.7");
  BOOST_TEST((*header)->source_port == 40000);
  std::string v6(36, '\0');
  v6[0] = '\x20', v6[1] = '\x01', v6[2] = '\x0d', v6[3] = '\xb8', v6[15] = '\x07';
  header = parseProxyHeader(v2(1, 0x21, v6));
  BOOST_REQUIRE(header && *header);
  BOOST_TEST(*(*header)->source_ip == "2001:db8::7");
  header = parseProxyHeader(v2(0, 0x00, ""));
  BOOST_REQUIRE(header && *header);
  BOOST_TEST(!(*header)->source_ip);
  auto partial = parseProxyHeader(v2(1, 0x11, v4).substr(0, 20));
  BOOST_TEST((partial && !*partial));
  BOOST_TEST(!parseProxyHeader(v2(1, 0x11, std::string(4, '\0'))).has_value());
  BOOST_TEST(!parseProxyHeader(v2(1, 0x11, std::string(600, '\0'))).has_value());
}

// proxy-protocol.txt §2.2: the family/transport byte takes the values the specification lists;
// any other is refused, never taken for UNSPEC (which would make the proxy's own address the
// client's, under every per-client limit and check).
BOOST_AUTO_TEST_CASE(v2_unknown_family_or_transport_is_refused) {
  std::string v4("\xc0\x00\x02\x07\x0a\x00\x00\x01\x9c\x40\x00\x19", 12);
  for (unsigned char bad : {0xF1, 0x41, 0x13, 0x10, 0x01, 0x23, 0x33, 0x0F, 0xFF}) {
    BOOST_TEST_CONTEXT("family and transport " << std::hex << unsigned(bad)) {
      auto refused = parseProxyHeader(v2(1, bad, v4));
      BOOST_REQUIRE(!refused.has_value());
      BOOST_TEST(refused.error().find("family") != std::string::npos, refused.error());
      BOOST_TEST(!parseProxyHeader(v2(0, bad, v4)).has_value());  // LOCAL is held to it too
    }
  }
  // The values the specification lists are accepted; UDP carries an address as TCP does, UNIX
  // and UNSPEC none (the real connection's is used).
  auto udp = parseProxyHeader(v2(1, 0x12, v4));
  BOOST_REQUIRE(udp && *udp);
  BOOST_TEST(*(*udp)->source_ip == "192.0.2.7");
  std::string v6(36, '\0');
  v6[15] = '\x01';
  auto udp6 = parseProxyHeader(v2(1, 0x22, v6));
  BOOST_REQUIRE(udp6 && *udp6);
  BOOST_TEST(*(*udp6)->source_ip == "::1");
  for (unsigned char none : {0x00, 0x31, 0x32}) {
    auto header = parseProxyHeader(v2(1, none, std::string(216, '\0')));
    BOOST_REQUIRE((header && *header));
    BOOST_TEST(!(*header)->source_ip);
  }
  auto local = parseProxyHeader(v2(0, 0x11, v4));  // LOCAL: a valid family, ignored
  BOOST_REQUIRE(local && *local);
  BOOST_TEST(!(*local)->source_ip);
}

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

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
