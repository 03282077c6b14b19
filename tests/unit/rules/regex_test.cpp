// Rule regexes as SpamAssassin writes them: delimiters and flags, octet matching with ASCII
// classes, Perl constructs PCRE2 refuses, counting as `while (/re/g)` counts.

#include <boost/test/unit_test.hpp>

#include <string>

#include "rules/regex.h"

namespace mailgate::rules {
namespace {

bool matches(const std::string& rule_regex, const std::string& subject) {
  auto regex = Regex::parse(rule_regex);
  BOOST_REQUIRE_MESSAGE(regex.has_value(), rule_regex << " does not compile");
  RegexScratch scratch;
  return regex->find(subject, scratch) == Regex::Found::Yes;
}

unsigned counted(const std::string& rule_regex, const std::string& subject, unsigned max = 100) {
  auto regex = Regex::parse(rule_regex);
  BOOST_REQUIRE_MESSAGE(regex.has_value(), rule_regex << " does not compile");
  RegexScratch scratch;
  return regex->count(subject, max, scratch).found;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rule_regex)

BOOST_AUTO_TEST_CASE(delimiters_and_flags_split_as_spamassassin_does) {
  auto plain = splitRegexText("/a\\/b/i");
  BOOST_REQUIRE(plain.has_value());
  BOOST_TEST(plain->pattern == "a\\/b");
  BOOST_TEST(plain->flags == "i");
  auto braces = splitRegexText("m{^http://x}s");
  BOOST_REQUIRE(braces.has_value());
  BOOST_TEST(braces->pattern == "^http://x");
  BOOST_TEST(braces->flags == "s");
  auto bang = splitRegexText("m!a/b!");
  BOOST_REQUIRE(bang.has_value());
  BOOST_TEST(bang->pattern == "a/b");
  auto qr = splitRegexText("qr<x>");
  BOOST_REQUIRE(qr.has_value());
  BOOST_TEST(qr->pattern == "x");
}

BOOST_AUTO_TEST_CASE(malformed_regex_text_is_refused) {
  for (const char* text : {"word", "/open", "/a/b/", "mxax", "m\\a\\", "/x/e", "/(?{ 1 })/", "m a "}) {
    BOOST_TEST(!splitRegexText(text).has_value(), text << " is accepted");
  }
  BOOST_TEST(!Regex::parse("/(unclosed/").has_value());
  BOOST_TEST(!Regex::parse("/x/z").has_value());
  BOOST_TEST(!Regex::parse("/[z-a]/").has_value());
}

BOOST_AUTO_TEST_CASE(flags_change_matching) {
  BOOST_TEST(matches("/viagra/i", "VIAGRA"));
  BOOST_TEST(!matches("/viagra/", "VIAGRA"));
  BOOST_TEST(matches("/^second/m", "first\nsecond"));
  BOOST_TEST(!matches("/^second/", "first\nsecond"));
  BOOST_TEST(matches("/a.b/s", "a\nb"));
  BOOST_TEST(!matches("/a.b/", "a\nb"));
  BOOST_TEST(matches("/a b c # comment\n/x", "abc"));
  BOOST_TEST(matches("/x/aa", "x"));  // Perl's charset flags are accepted and change nothing here
}

BOOST_AUTO_TEST_CASE(classes_are_ascii_and_matching_is_on_utf8_octets) {
  BOOST_TEST(!matches("/^\\w+$/", "gr\xc3\xbc\xc3\x9f"));  // ü is not \w for an octet string
  BOOST_TEST(matches("/^\\w+$/", "gruss"));
  BOOST_TEST(!matches("/\xc3\xbc/i", "\xc3\x9c"));  // no Unicode case folding: ü is not Ü
  BOOST_TEST(matches("/gr\\xc3\\xbc/", "gr\xc3\xbc\xc3\x9f"));
  BOOST_TEST(matches("/^.{4}$/", "\xc3\xbc\xc3\xbc"));  // . is one octet
  BOOST_TEST(!matches("/\\s/", "\xc2\xa0"));  // no-break space is not \s
}

BOOST_AUTO_TEST_CASE(wide_code_points_can_never_match_an_octet_string) {
  bool unmatchable = false;
  BOOST_TEST(perlToPcre2("a\\x{263A}b", unmatchable) == "a(?!)b");
  BOOST_TEST(unmatchable);
  unmatchable = false;
  BOOST_TEST(perlToPcre2("[a\\x{263A}]", unmatchable) == "[a]");
  BOOST_TEST(!unmatchable);
  BOOST_TEST(perlToPcre2("[\\x{41}-\\x{263A}]", unmatchable) == "[\\x{41}-\\xff]");
  BOOST_TEST(perlToPcre2("\\Q\\x{263A}\\E", unmatchable) == "\\Q\\x{263A}\\E");
  auto wide = Regex::parse("/\\x{263A}/");
  BOOST_REQUIRE(wide.has_value());
  BOOST_TEST(wide->neverMatches());
  auto alternative = Regex::parse("/\\x{263A}|smile/");
  BOOST_REQUIRE(alternative.has_value());
  BOOST_TEST(!alternative->neverMatches());
  BOOST_TEST(matches("/\\x{263A}|smile/", "a smile"));
  BOOST_TEST(matches("/[^\\x{263A}]/", "x"));
}

BOOST_AUTO_TEST_CASE(perl_newline_and_escapes) {
  BOOST_TEST(matches("/a$/", "a\n"));  // $ before a final newline
  BOOST_TEST(!matches("/a$/", "a\r\n"));  // only LF is a newline
  BOOST_TEST(matches("/foo\\Kbar/", "foobar"));
  BOOST_TEST(matches("/(?<!\\d)1\\.0/", "v1.0"));
}

BOOST_AUTO_TEST_CASE(count_counts_like_a_global_match) {
  BOOST_TEST(counted("/spam/", "spam spam eggs spam") == 3u);
  BOOST_TEST(counted("/spam/", "spam spam eggs spam", 2) == 2u);
  BOOST_TEST(counted("/aa/", "aaaaa") == 2u);  // matches do not overlap
  BOOST_TEST(counted("/x*/", "ab") == 3u);    // an empty match at each position, as Perl's /g
  BOOST_TEST(counted("/z/", "abc") == 0u);
}

BOOST_AUTO_TEST_CASE(pathological_patterns_give_up_instead_of_hanging) {
  std::string subject(40, 'a');
  subject += '!';
  // Exponential backtracking: bounded by regex_match_limit, it ends (as no match).
  BOOST_TEST(!matches("/^(a+)+$/", subject));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate::rules
