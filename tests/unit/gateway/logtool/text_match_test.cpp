#include "gateway/logtool/text_match.h"

#include <boost/test/unit_test.hpp>

#include <string>

namespace mailgate::logtool {
namespace {

AddressPattern pattern(std::string_view text) {
  auto parsed = AddressPattern::parse(text);
  BOOST_REQUIRE_MESSAGE(parsed.has_value(), text);
  return *parsed;
}

BOOST_AUTO_TEST_SUITE(logtool_text_match)

BOOST_AUTO_TEST_CASE(needles_are_found_in_any_case) {
  CaseInsensitiveNeedle needle("Viagra");
  BOOST_TEST(needle.foundIn("buy VIAGRA now"));
  BOOST_TEST(needle.foundIn("viagra"));
  BOOST_TEST(needle.foundIn("xxviAGRa"));
  BOOST_TEST(!needle.foundIn("viagr"));
  BOOST_TEST(!needle.foundIn("v i a g r a"));
  BOOST_TEST(CaseInsensitiveNeedle("").foundIn("anything"));
  BOOST_TEST(CaseInsensitiveNeedle("x").foundIn("aXb"));
  BOOST_TEST(!CaseInsensitiveNeedle("x").foundIn("ab"));
}

BOOST_AUTO_TEST_CASE(every_position_is_searched) {
  // Horspool skips: a needle must still be found wherever it starts, with repeats that tempt a
  // wrong skip.
  std::string needle = "abcab";
  for (std::size_t at = 0; at < 40; ++at) {
    std::string haystack(40, 'b');
    haystack += "ab";
    haystack.replace(at, needle.size(), "ABCAB");
    BOOST_TEST(CaseInsensitiveNeedle(needle).foundIn(haystack), at);
  }
  BOOST_TEST(CaseInsensitiveNeedle("aab").foundIn("aaaaaaaab"));
  BOOST_TEST(!CaseInsensitiveNeedle("aab").foundIn("aaaaaaaaa"));
  // Octets past ASCII are compared as they are.
  BOOST_TEST(CaseInsensitiveNeedle("größe").foundIn("Die GRößE"));
  BOOST_TEST(!CaseInsensitiveNeedle("größe").foundIn("GRÖSSE"));
}

BOOST_AUTO_TEST_CASE(a_needle_longer_than_the_skip_table) {
  std::string needle(300, 'a');
  needle += "Z";
  std::string haystack = std::string(1000, 'a') + "z" + std::string(10, 'a');
  BOOST_TEST(CaseInsensitiveNeedle(needle).foundIn(haystack));
  BOOST_TEST(!CaseInsensitiveNeedle(needle).foundIn(std::string(1000, 'a')));
}

BOOST_AUTO_TEST_CASE(an_address_matches_itself_in_any_case) {
  auto address = pattern("Alice@Example.ORG");
  BOOST_TEST(address.matches("alice@example.org"));
  BOOST_TEST(!address.matches("alice@example.org.evil"));
  BOOST_TEST(!address.matches("xalice@example.org"));
  BOOST_TEST(pattern("<alice@example.org>").matches("ALICE@example.org"));
}

BOOST_AUTO_TEST_CASE(a_domain_matches_its_subdomains) {
  for (const char* text : {"example.com", "@example.com", "EXAMPLE.com"}) {
    auto domain = pattern(text);
    BOOST_TEST(domain.matches("bob@example.com"), text);
    BOOST_TEST(domain.matches("bob@mail.Example.com"), text);
    BOOST_TEST(!domain.matches("bob@badexample.com"), text);
    BOOST_TEST(!domain.matches("bob@example.com.au"), text);
    BOOST_TEST(!domain.matches("example.com"), text);
    BOOST_TEST(!domain.matches(""), text);
  }
}

BOOST_AUTO_TEST_CASE(the_null_sender) {
  auto null = pattern("<>");
  BOOST_TEST(null.matches(""));
  BOOST_TEST(!null.matches("a@b.example"));
  BOOST_TEST(!pattern("b.example").matches(""));
}

BOOST_AUTO_TEST_CASE(empty_patterns_are_refused) {
  for (const char* text : {"", "@", "user@", "<@>"}) BOOST_TEST(!AddressPattern::parse(text).has_value(), text);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
