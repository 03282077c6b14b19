#include <boost/test/unit_test.hpp>

#include <string>

#include "filters/dkim/dkim_identifiers.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(dkim_identifiers)

// RFC 6376 §3.5: domain-name = sub-domain 1*("." sub-domain), sub-domain = Let-dig [Ldh-str].
BOOST_AUTO_TEST_CASE(d_is_a_domain_name_of_ldh_labels) {
  for (const char* good : {"legitimate.com", "a.b", "Mail-1.Example.ORG", "0.example", "xn--bcher-kva.example",
                           "a-b--c.example"})
    BOOST_TEST(isDkimDomain(good), good);
  for (const char* bad : {"", "com", "legitimate.com(.attacker.com", "legitimate.com (c)", "legitimate.com;x=y",
                          "legitimate .com", "legitimate.com.", ".legitimate.com", "a..com", "-a.com", "a-.com",
                          "a.com-", "under_score.com", "legitimate.com\r\n x", "b\xc3\xbc" "cher.example",
                          "\"legitimate.com\"", "[192.0.2.1]", "a@b.com", "legitimate.com/x"})
    BOOST_TEST(!isDkimDomain(bad), bad);
}

BOOST_AUTO_TEST_CASE(labels_and_names_have_their_dns_lengths) {
  std::string label63(63, 'a');
  BOOST_TEST(isDkimDomain(label63 + ".com"));
  BOOST_TEST(!isDkimDomain(label63 + "a.com"));
  std::string name = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');  // 253
  BOOST_REQUIRE_EQUAL(name.size(), 253u);
  BOOST_TEST(isDkimDomain(name));
  BOOST_TEST(!isDkimDomain(name + "b"));
}

// RFC 6376 §3.1: selector = sub-domain *("." sub-domain): one label is enough.
BOOST_AUTO_TEST_CASE(s_is_one_or_more_ldh_labels) {
  for (const char* good : {"sel", "sel2048", "2024-01", "a.b.c", "S1"}) BOOST_TEST(isDkimSelector(good), good);
  for (const char* bad : {"", "sel(x", "sel x", "sel;", "sel.", ".sel", "a..b", "-sel", "sel-", "s_1", "sel\"",
                          "s=1"})
    BOOST_TEST(!isDkimSelector(bad), bad);
  BOOST_TEST(isDkimSelector(std::string(63, 's')));
  BOOST_TEST(!isDkimSelector(std::string(64, 's')));
}

// RFC 6376 §3.5: i= [ Local-part ] "@" domain-name, the domain d= or below it.
BOOST_AUTO_TEST_CASE(i_is_an_address_within_d) {
  for (const char* good : {"@legitimate.com", "alice@legitimate.com", "@mail.legitimate.com", "a.b+c@LEGITIMATE.com",
                           "\"a b\"@legitimate.com", "\"a\\\"b\"@legitimate.com", "a=2Bb@legitimate.com",
                           "alice@legitimate.com\r\n ", "=40legitimate.com"})
    BOOST_TEST(isDkimIdentity(good, "legitimate.com"), good);
  for (const char* bad : {"", "legitimate.com", "@attacker.com", "@notlegitimate.com", "@legitimate.com.attacker.com",
                          "a(b@legitimate.com", "a<b@legitimate.com", "a..b@legitimate.com", ".a@legitimate.com",
                          "a\"b@legitimate.com", "\"a\"b\"@legitimate.com", "@legitimate.com(", "@legitimate.com;x",
                          "a=4@legitimate.com", "a=zz@legitimate.com", "a=4g@legitimate.com", "@[192.0.2.1]"})
    BOOST_TEST(!isDkimIdentity(bad, "legitimate.com"), bad);
}

BOOST_AUTO_TEST_CASE(the_reason_names_the_tag_not_its_value) {
  BOOST_TEST(!invalidDkimIdentifiers("legitimate.com", "sel", std::nullopt).has_value());
  BOOST_TEST(!invalidDkimIdentifiers("legitimate.com", "sel", "@legitimate.com").has_value());
  BOOST_TEST(invalidDkimIdentifiers("legitimate.com(.attacker.com", "sel", std::nullopt).value() ==
             "d= is not a valid domain name");
  BOOST_TEST(invalidDkimIdentifiers("legitimate.com", "sel(x", std::nullopt).value() == "s= is not a valid selector");
  BOOST_TEST(invalidDkimIdentifiers("legitimate.com", "sel", "@attacker.com").value() ==
             "i= is not an address within d=");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
