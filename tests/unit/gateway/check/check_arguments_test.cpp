#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <vector>

#include "gateway/check/check_command.h"

namespace mailgate {
namespace {

struct Parsed {
  std::optional<CheckRequest> request;
  std::optional<std::string> config_path;
  std::string error;
};

Parsed parse(std::vector<std::string> arguments) {
  Parsed parsed;
  parsed.request = parseCheckArguments(arguments, parsed.config_path, parsed.error);
  return parsed;
}

// The argument is refused, and the message names the option, the value and why.
void refused(std::vector<std::string> arguments, const std::string& expected_part) {
  Parsed parsed = parse(arguments);
  BOOST_TEST(!parsed.request.has_value());
  BOOST_TEST(parsed.error.find(expected_part) != std::string::npos, "error: " << parsed.error);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(check_arguments)

BOOST_AUTO_TEST_CASE(defaults_say_which_client_is_used) {
  Parsed parsed = parse({"message.eml"});
  BOOST_TEST_REQUIRE(parsed.request.has_value());
  BOOST_TEST(parsed.request->message_path == "message.eml");
  BOOST_TEST(parsed.request->client_ip == "127.0.0.1");
  BOOST_TEST(!parsed.request->client_ip_given);
  BOOST_TEST(parsed.request->helo == "localhost");
  BOOST_TEST(parsed.request->sender.null);
  BOOST_TEST(parsed.request->recipients.empty());
  BOOST_TEST(!parsed.config_path.has_value());
}

BOOST_AUTO_TEST_CASE(ip_must_be_an_ip_literal) {
  for (std::string bad : {"not-an-ip", "192.0.2", "192.0.2.256", "[192.0.2.1]", "192.0.2.1:25", "mx.example.org",
                          "2001:db8::g", "", " 192.0.2.1"})
    BOOST_TEST_CONTEXT("--ip '" << bad << "'") refused({"--ip", bad, "m.eml"}, "--ip " + bad + ": not an IPv4 or IPv6 address");
  Parsed v4 = parse({"--ip", "192.0.2.1", "m.eml"});
  BOOST_TEST_REQUIRE(v4.request.has_value());
  BOOST_TEST(v4.request->client_ip == "192.0.2.1");
  BOOST_TEST(v4.request->client_ip_given);
  // Written as a connected client's address is written: canonical.
  Parsed v6 = parse({"--ip", "2001:DB8:0::1", "m.eml"});
  BOOST_TEST_REQUIRE(v6.request.has_value());
  BOOST_TEST(v6.request->client_ip == "2001:db8::1");
}

BOOST_AUTO_TEST_CASE(helo_is_what_a_session_accepts) {
  for (std::string bad : std::vector<std::string>{"", "two words", "tab\there", "cr\rhere", "caf\xc3\xa9.example", std::string(996, 'a')})
    BOOST_TEST_CONTEXT("--helo '" << bad << "'") refused({"--helo", bad, "m.eml"}, "not a HELO argument");
  for (std::string good : std::vector<std::string>{"mail.example.org", "[192.0.2.1]", "localhost", "a_b", std::string(993, 'a')}) {
    Parsed parsed = parse({"--helo", good, "m.eml"});
    BOOST_TEST_REQUIRE(parsed.request.has_value(), good);
    BOOST_TEST(parsed.request->helo == good);
  }
}

BOOST_AUTO_TEST_CASE(from_and_rcpt_are_parsed_as_mail_and_rcpt_parse_them) {
  refused({"--from", "not an address", "m.eml"}, "--from not an address: 501 5.1.7");
  refused({"--from", "a@", "m.eml"}, "501 5.1.7");
  refused({"--from", "a@b.example> SIZE=1", "m.eml"}, "501 5.1.7");  // no parameters smuggled in
  refused({"--rcpt", "user@", "m.eml"}, "--rcpt user@: 501 5.1.3");
  refused({"--rcpt", "<>", "m.eml"}, "501 5.1.3");  // the null path is a sender only
  refused({"--rcpt", "", "m.eml"}, "501 5.1.3");

  Parsed parsed = parse({"--from", "<Alice@Example.ORG>", "--rcpt", "bob@example.org", "--rcpt", "Postmaster",
                         "--rcpt", "<\"john doe\"@example.org>", "m.eml"});
  BOOST_TEST_REQUIRE(parsed.request.has_value(), parsed.error);
  BOOST_TEST(parsed.request->sender.address() == "Alice@Example.ORG");
  BOOST_TEST_REQUIRE(parsed.request->recipients.size() == 3u);
  BOOST_TEST(parsed.request->recipients[0].address() == "bob@example.org");
  BOOST_TEST(parsed.request->recipients[1].address() == "Postmaster");
  BOOST_TEST(parsed.request->recipients[2].address() == "\"john doe\"@example.org");
  for (std::string null : {"", "<>"}) {
    Parsed sender = parse({"--from", null, "m.eml"});
    BOOST_TEST_REQUIRE(sender.request.has_value());
    BOOST_TEST(sender.request->sender.null);
  }
}

BOOST_AUTO_TEST_CASE(a_dash_is_standard_input) {
  Parsed parsed = parse({"--json", "-", "--config", "gw.toml"});
  BOOST_TEST_REQUIRE(parsed.request.has_value(), parsed.error);
  BOOST_TEST(parsed.request->message_path == "-");
  BOOST_TEST(parsed.request->json);
  BOOST_TEST(parsed.config_path.value_or("") == "gw.toml");
}

BOOST_AUTO_TEST_CASE(usage_errors) {
  refused({}, "no message file given");
  refused({"--json"}, "no message file given");
  refused({"a.eml", "b.eml"}, "more than one message");
  refused({"--colour", "red", "m.eml"}, "unknown argument '--colour'");
  refused({"m.eml", "--ip"}, "incomplete argument '--ip'");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
