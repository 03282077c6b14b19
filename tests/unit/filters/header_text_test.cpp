#include <boost/test/unit_test.hpp>

#include <string>

#include "filters/header_text.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(header_text)

// RFC 8601 §2.2: pvalue = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS], value an
// RFC 2045 token or quoted-string.
BOOST_AUTO_TEST_CASE(a_token_or_an_address_stands_as_it_is) {
  for (const char* plain : {"legitimate.com", "sel2048", "AbC+dEf", "a_b-c.d", "alice@example.com", "@example.com",
                            "first.last+tag@mail.example.org"})
    BOOST_TEST(propertyValue(plain).value() == plain, plain);
}

BOOST_AUTO_TEST_CASE(anything_else_is_a_quoted_string) {
  BOOST_TEST(propertyValue("legitimate.com(.attacker.com").value() == "\"legitimate.com(.attacker.com\"");
  BOOST_TEST(propertyValue("x; dkim=pass header.d=bank.example").value() == "\"x; dkim=pass header.d=bank.example\"");
  BOOST_TEST(propertyValue("AbC/dEf=").value() == "\"AbC/dEf=\"");
  BOOST_TEST(propertyValue("say \"hi\" \\o/").value() == "\"say \\\"hi\\\" \\\\o/\"");
  // Addresses whose local-part is not a plain dot-atom of token characters, or whose domain is
  // not a domain-name, are quoted whole.
  BOOST_TEST(propertyValue("\"john doe\"@example.com").value() == "\"\\\"john doe\\\"@example.com\"");
  BOOST_TEST(propertyValue("a=b@example.com").value() == "\"a=b@example.com\"");
  BOOST_TEST(propertyValue("alice@localhost").value() == "\"alice@localhost\"");
  BOOST_TEST(propertyValue("alice@[192.0.2.1]").value() == "\"alice@[192.0.2.1]\"");
  BOOST_TEST(propertyValue("a(b)@example.com").value() == "\"a(b)@example.com\"");
}

BOOST_AUTO_TEST_CASE(what_cannot_be_written_as_it_is_is_refused) {
  BOOST_TEST(!propertyValue(""));
  BOOST_TEST(!propertyValue("legitimate.com\r\n\tdkim=pass"));
  BOOST_TEST(!propertyValue("tab\there"));
  BOOST_TEST(!propertyValue(std::string("nul\0x", 5)));
  BOOST_TEST(!propertyValue("del\x7f"));
  BOOST_TEST(!propertyValue("b\xc3\xbc" "cher.example"));
  BOOST_TEST(propertyValue(std::string(max_property_octets, 'a')).has_value());
  BOOST_TEST(!propertyValue(std::string(max_property_octets + 1, 'a')));
}

BOOST_AUTO_TEST_CASE(a_property_spec_is_left_out_with_its_value) {
  BOOST_TEST(propertySpec("header.d", "example.com") == " header.d=example.com");
  BOOST_TEST(propertySpec("smtp.helo", "x;y") == " smtp.helo=\"x;y\"");
  BOOST_TEST(propertySpec("smtp.mailfrom", "a\r\nb@example.com") == "");
  BOOST_TEST(propertySpec("header.b", "") == "");
}

BOOST_AUTO_TEST_CASE(domain_names_are_ldh_labels) {
  BOOST_TEST(isDomainName("example.com"));
  BOOST_TEST(isDomainName("a-1.B2.example"));
  BOOST_TEST(!isDomainName("example"));
  BOOST_TEST(!isDomainName("example.com."));
  BOOST_TEST(!isDomainName("ex(ample.com"));
  BOOST_TEST(!isDomainName("-x.com"));
}

// RFC 5322 §3.2.2: inside a comment, "(" and ")" nest or end it and "\" quotes what follows.
BOOST_AUTO_TEST_CASE(comment_text_cannot_end_or_open_a_comment) {
  BOOST_TEST(printable("a(b)c\\", 100) == "abc");
  BOOST_TEST(printable("a(b)c\\", 100, false) == "a(b)c\\");
  BOOST_TEST(printable("x\r\ny\x80z", 100) == "xyz");
  BOOST_TEST(printable("abcdef", 3) == "abc");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
