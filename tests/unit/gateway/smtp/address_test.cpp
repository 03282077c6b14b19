// MAIL and RCPT arguments (RFC 5321 §4.1.2, §4.1.3, §4.5.3.1; RFC 1870; RFC 6152): what is
// accepted, what it parses to, and the exact reply for each kind of mistake.
#include <boost/test/unit_test.hpp>

#include <string>

#include "gateway/smtp/address.h"

namespace mailgate {
namespace {

template <class T>
void checkRefused(const std::expected<T, Reply>& result, int code, std::string_view enhanced) {
  BOOST_REQUIRE(!result.has_value());
  BOOST_TEST(result.error().code() == code);
  BOOST_TEST(result.error().enhanced() == enhanced);
}

void badSender(std::string_view argument) {
  BOOST_TEST_CONTEXT(argument) { checkRefused(parseMailCommand(argument), 501, "5.1.7"); }
}

void mailSyntax(std::string_view argument) {
  BOOST_TEST_CONTEXT(argument) { checkRefused(parseMailCommand(argument), 501, "5.5.4"); }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(address)

BOOST_AUTO_TEST_CASE(simple_sender) {
  auto mail = parseMailCommand("FROM:<alice@example.com>");
  BOOST_REQUIRE(mail.has_value());
  BOOST_TEST(!mail->path.null);
  BOOST_TEST(mail->path.mailbox.local_part == "alice");
  BOOST_TEST(mail->path.mailbox.domain == "example.com");
  BOOST_TEST(mail->path.address() == "alice@example.com");
  BOOST_TEST(mail->path.bracketed() == "<alice@example.com>");
  BOOST_TEST(!mail->size.has_value());
  BOOST_TEST((mail->body == BodyType::Unspecified));
}

BOOST_AUTO_TEST_CASE(null_sender) {
  auto mail = parseMailCommand("FROM:<>");
  BOOST_REQUIRE(mail.has_value());
  BOOST_TEST(mail->path.null);
  BOOST_TEST(mail->path.address() == "");
  BOOST_TEST(mail->path.bracketed() == "<>");
}

BOOST_AUTO_TEST_CASE(keyword_is_case_insensitive_and_one_space_is_tolerated) {
  auto lower = parseMailCommand("from:<a@b.example>");
  BOOST_REQUIRE(lower.has_value());
  BOOST_TEST(lower->path.address() == "a@b.example");
  auto spaced = parseMailCommand("From: <a@b.example>");
  BOOST_REQUIRE(spaced.has_value());
  BOOST_TEST(spaced->path.address() == "a@b.example");
  auto rcpt = parseRcptCommand("to: <Bob@Example.ORG>");
  BOOST_REQUIRE(rcpt.has_value());
  BOOST_TEST(rcpt->path.mailbox.domain == "Example.ORG");  // kept as written
  mailSyntax("FROM:  <a@b.example>");
}

BOOST_AUTO_TEST_CASE(quoted_local_part_keeps_its_quotes) {
  auto mail = parseMailCommand(R"(FROM:<"john \"jd\" doe"@example.org>)");
  BOOST_REQUIRE(mail.has_value());
  BOOST_TEST(mail->path.mailbox.local_part == R"("john \"jd\" doe")");
  BOOST_TEST(mail->path.address() == R"("john \"jd\" doe"@example.org)");
  auto bracket = parseMailCommand(R"(FROM:<"a>b"@example.org>)");
  BOOST_REQUIRE(bracket.has_value());
  BOOST_TEST(bracket->path.mailbox.local_part == R"("a>b")");
}

BOOST_AUTO_TEST_CASE(address_literals) {
  auto v4 = parseMailCommand("FROM:<a@[192.0.2.1]>");
  BOOST_REQUIRE(v4.has_value());
  BOOST_TEST(v4->path.mailbox.domain == "[192.0.2.1]");
  auto v6 = parseRcptCommand("TO:<a@[IPv6:2001:db8::1]>");
  BOOST_REQUIRE(v6.has_value());
  BOOST_TEST(v6->path.mailbox.domain == "[IPv6:2001:db8::1]");
  BOOST_TEST(isValidAddressLiteral("[ipv6:::1]"));
  BOOST_TEST(!isValidAddressLiteral("[192.0.2.256]"));
  BOOST_TEST(!isValidAddressLiteral("[2001:db8::1]"));  // RFC 5321 §4.1.3: the tag is required
  BOOST_TEST(!isValidAddressLiteral("[IPv6:192.0.2.1]"));
  BOOST_TEST(!isValidAddressLiteral("[example.org]"));
  badSender("FROM:<a@[300.1.1.1]>");
  badSender("FROM:<a@[IPv6:2001:db8::zz]>");
}

BOOST_AUTO_TEST_CASE(source_route_is_dropped) {
  auto mail = parseMailCommand("FROM:<@relay1.example,@relay2.example:user@d.example>");
  BOOST_REQUIRE(mail.has_value());
  BOOST_TEST(mail->path.address() == "user@d.example");
  auto rcpt = parseRcptCommand("TO:<@relay.example:bob@example.org>");
  BOOST_REQUIRE(rcpt.has_value());
  BOOST_TEST(rcpt->path.bracketed() == "<bob@example.org>");
  badSender("FROM:<@relay.example user@d.example>");
  badSender("FROM:<@-bad.example:user@d.example>");
  badSender("FROM:<@relay.example,:user@d.example>");
}

BOOST_AUTO_TEST_CASE(postmaster_without_domain_only_for_rcpt) {
  auto rcpt = parseRcptCommand("TO:<Postmaster>");
  BOOST_REQUIRE(rcpt.has_value());
  BOOST_TEST(rcpt->path.mailbox.local_part == "Postmaster");
  BOOST_TEST(rcpt->path.mailbox.domain == "");
  BOOST_TEST(rcpt->path.address() == "Postmaster");
  BOOST_TEST(rcpt->path.bracketed() == "<Postmaster>");
  badSender("FROM:<postmaster>");
  checkRefused(parseRcptCommand("TO:<bob>"), 501, "5.1.3");
}

BOOST_AUTO_TEST_CASE(size_and_body_parameters) {
  auto mail = parseMailCommand("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME");
  BOOST_REQUIRE(mail.has_value());
  BOOST_TEST(mail->size.value_or(0) == 1000u);
  BOOST_TEST((mail->body == BodyType::EightBitMime));
  auto spaced = parseMailCommand("FROM:<> body=7bit   size=18446744073709551615 ");
  BOOST_REQUIRE(spaced.has_value());
  BOOST_TEST(spaced->size.value_or(0) == 18446744073709551615u);
  BOOST_TEST((spaced->body == BodyType::SevenBit));
  auto zero = parseMailCommand("FROM:<a@b.example> SIZE=0");
  BOOST_REQUIRE(zero.has_value());
  BOOST_TEST(zero->size.value_or(1) == 0u);
}

BOOST_AUTO_TEST_CASE(limits_of_length) {
  std::string local64(64, 'l');
  BOOST_TEST(parseMailCommand("FROM:<" + local64 + "@example.org>").has_value());
  badSender("FROM:<" + local64 + "l@example.org>");
  std::string label63(63, 'd');
  BOOST_TEST(isValidDomain(label63 + ".example"));
  BOOST_TEST(!isValidDomain(label63 + "d.example"));
  // 4 labels of 63 and dots: 255 octets is the most a domain may have.
  std::string domain255 = label63 + "." + label63 + "." + label63 + "." + label63;
  BOOST_TEST(domain255.size() == 255u);
  BOOST_TEST(isValidDomain(domain255));
  BOOST_TEST(!isValidDomain(domain255 + "d"));
  badSender("FROM:<a@" + domain255 + "d>");
  // The path with its brackets: 256 octets at most.
  std::string domain = label63 + "." + label63 + "." + label63 + "." + std::string(60, 'd');
  BOOST_TEST(parseMailCommand("FROM:<a@" + domain + ">").has_value());
  badSender("FROM:<ab@" + domain + ">");
}

BOOST_AUTO_TEST_CASE(bad_sender_addresses) {
  badSender("FROM:<alice@@example.com>");
  badSender("FROM:<alice..smith@example.com>");
  badSender("FROM:<.alice@example.com>");
  badSender("FROM:<alice.@example.com>");
  badSender("FROM:<alice@-example.com>");
  badSender("FROM:<alice@example-.com>");
  badSender("FROM:<alice@example..com>");
  badSender("FROM:<alice@example.com.>");
  badSender("FROM:<alice@exa_mple.com>");
  badSender("FROM:<alice@>");
  badSender("FROM:<alice>");
  badSender("FROM:<@example.com>");
  badSender("FROM:<al ice@example.com>");
  badSender("FROM:<j\xc3\xb6rg@example.com>");
  badSender("FROM:<alice@b\xc3\xbc" "cher.example>");
  badSender("FROM:<\"unterminated@example.com>");
  badSender("FROM:<\"a\"b@example.com>");
  badSender("FROM:<\"tab\there\"@example.com>");
}

BOOST_AUTO_TEST_CASE(bad_command_syntax) {
  mailSyntax("FROM:alice@example.com");
  mailSyntax("FROM:<alice@example.com");
  mailSyntax("FROM<alice@example.com>");
  mailSyntax("TO:<alice@example.com>");
  mailSyntax("FROM:");
  mailSyntax("");
  mailSyntax("FROM:<alice@example.com>garbage");
  mailSyntax("FROM:<alice@example.com> =1");
  mailSyntax("FROM:<alice@example.com> SI\xc3\x9a=1");
  checkRefused(parseRcptCommand("TO:bob@example.org"), 501, "5.5.4");
  checkRefused(parseRcptCommand("TO:<bob@example.org>x"), 501, "5.5.4");
  auto refused = parseRcptCommand("FROM:<bob@example.org>");
  BOOST_REQUIRE(!refused.has_value());
  BOOST_TEST(refused.error().wire() == "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
  auto mail = parseMailCommand("FROM:a@b");
  BOOST_REQUIRE(!mail.has_value());
  BOOST_TEST(mail.error().wire() == "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
}

BOOST_AUTO_TEST_CASE(bad_parameters) {
  for (auto argument : {"FROM:<a@b.example> SIZE=abc", "FROM:<a@b.example> SIZE=99999999999999999999999",
                        "FROM:<a@b.example> SIZE=18446744073709551616", "FROM:<a@b.example> SIZE=",
                        "FROM:<a@b.example> SIZE", "FROM:<a@b.example> SIZE=-1", "FROM:<a@b.example> SIZE=+1"}) {
    auto mail = parseMailCommand(argument);
    BOOST_TEST_CONTEXT(argument) {
      BOOST_REQUIRE(!mail.has_value());
      BOOST_TEST(mail.error().wire() == "501 5.5.4 Bad SIZE parameter\r\n");
    }
  }
  for (auto argument : {"FROM:<a@b.example> BODY=BINARYMIME", "FROM:<a@b.example> BODY"}) {
    auto mail = parseMailCommand(argument);
    BOOST_TEST_CONTEXT(argument) {
      BOOST_REQUIRE(!mail.has_value());
      BOOST_TEST(mail.error().wire() == "501 5.5.4 Bad BODY parameter\r\n");
    }
  }
  mailSyntax("FROM:<a@b.example> SIZE=10 size=10");
  mailSyntax("FROM:<a@b.example> BODY=7BIT BODY=8BITMIME");
  auto unknown = parseMailCommand("FROM:<a@b.example> SIZE=10 foo=bar");
  BOOST_REQUIRE(!unknown.has_value());
  BOOST_TEST(unknown.error().wire() == "555 5.5.4 Unsupported parameter FOO\r\n");
  auto smtputf8 = parseMailCommand("FROM:<a@b.example> SMTPUTF8");
  BOOST_REQUIRE(!smtputf8.has_value());
  BOOST_TEST(smtputf8.error().wire() == "555 5.5.4 Unsupported parameter SMTPUTF8\r\n");
  // Too long to name in a 512-octet reply line: refused all the same, without the name.
  auto long_keyword = parseMailCommand("FROM:<a@b.example> " + std::string(600, 'X') + "=1");
  BOOST_REQUIRE(!long_keyword.has_value());
  BOOST_TEST(long_keyword.error().wire() == "555 5.5.4 Unsupported parameter\r\n");
}

BOOST_AUTO_TEST_CASE(rcpt_refusals) {
  checkRefused(parseRcptCommand("TO:<>"), 501, "5.1.3");
  checkRefused(parseRcptCommand("TO:<bob@exa mple.org>"), 501, "5.1.3");
  checkRefused(parseRcptCommand("TO:<b\xc3\xb6" "b@example.org>"), 501, "5.1.3");
  checkRefused(parseRcptCommand("TO:<bob..x@example.org>"), 501, "5.1.3");
  auto notify = parseRcptCommand("TO:<bob@example.org> NOTIFY=NEVER");
  BOOST_REQUIRE(!notify.has_value());
  BOOST_TEST(notify.error().wire() == "555 5.5.4 Unsupported parameter NOTIFY\r\n");
  auto bad = parseRcptCommand("TO:<>");
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.error().wire() == "501 5.1.3 Bad recipient address syntax\r\n");
}

BOOST_AUTO_TEST_CASE(domains_and_lower_case) {
  BOOST_TEST(isValidDomain("example.org"));
  BOOST_TEST(isValidDomain("x1-y2.EXAMPLE"));
  BOOST_TEST(isValidDomain("localhost"));
  BOOST_TEST(!isValidDomain(""));
  BOOST_TEST(!isValidDomain("-a.example"));
  BOOST_TEST(!isValidDomain("a.example-"));
  BOOST_TEST(!isValidDomain(".example"));
  BOOST_TEST(!isValidDomain("[192.0.2.1]"));
  BOOST_TEST(asciiLower("Example.ORG") == "example.org");
  BOOST_TEST(asciiLower("\xc3\x84X") == "\xc3\x84x");  // only ASCII letters change
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
