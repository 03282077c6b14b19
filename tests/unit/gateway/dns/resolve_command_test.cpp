#include <boost/test/unit_test.hpp>

#include "gateway/dns/dns_lookup.h"
#include "gateway/dns/resolve_command.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(resolve_command)

BOOST_AUTO_TEST_CASE(ptr_of_an_address_asks_its_reverse_name) {
  BOOST_TEST(questionName("192.0.2.1", dns_type::PTR) == "1.2.0.192.in-addr.arpa");
  BOOST_TEST(questionName("10.0.0.255", dns_type::PTR) == "255.0.0.10.in-addr.arpa");
  // RFC 3596 §2.5: every nibble, lowest first, zeros written out.
  BOOST_TEST(questionName("2001:db8::1", dns_type::PTR) ==
             "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  BOOST_TEST(questionName("2001:DB8:ABCD::FE", dns_type::PTR) ==
             "e.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa");
}

BOOST_AUTO_TEST_CASE(other_names_and_types_are_asked_as_given) {
  BOOST_TEST(questionName("1.2.0.192.in-addr.arpa", dns_type::PTR) == "1.2.0.192.in-addr.arpa");
  BOOST_TEST(questionName("mail.example.org", dns_type::PTR) == "mail.example.org");
  BOOST_TEST(questionName("192.0.2", dns_type::PTR) == "192.0.2");
  BOOST_TEST(questionName("192.0.2.1", dns_type::A) == "192.0.2.1");
  BOOST_TEST(questionName("2001:db8::1", dns_type::TXT) == "2001:db8::1");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
