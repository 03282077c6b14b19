// SmtpClient, byte for byte: the commands it writes, the dot-stuffing of content across calls,
// and the replies it parses (whole, split at every byte, pipelined, and broken).
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "gateway/smtp/smtp_client.h"

namespace mailgate {
namespace {

using Command = SmtpClient::Command;

Path pathOf(std::string local_part, std::string domain) {
  Path path;
  path.mailbox = Mailbox{std::move(local_part), std::move(domain)};
  return path;
}

std::vector<SmtpClient::Response> drain(SmtpClient& client) {
  std::vector<SmtpClient::Response> responses;
  while (auto response = client.next()) responses.push_back(std::move(*response));
  return responses;
}

const std::string ehlo_reply =
    "250-mx.downstream.example Hello\r\n"
    "250-pipelining\r\n"
    "250-SIZE 10240000\r\n"
    "250-8BITMIME\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250 CHUNKING\r\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(smtp_client)

BOOST_AUTO_TEST_CASE(command_bytes) {
  SmtpClient client;
  client.expectGreeting();
  BOOST_TEST(!client.hasOutput());
  client.ehlo("gw.example");
  client.helo("gw.example");
  client.mail(pathOf("alice", "example.com"), std::nullopt, BodyType::Unspecified);
  Path null_path;
  null_path.null = true;
  client.mail(null_path, 1000, BodyType::EightBitMime);
  client.mail(pathOf("a", "b.example"), std::nullopt, BodyType::SevenBit);
  client.rcpt(pathOf("bob", "example.org"));
  client.rcpt(pathOf("postmaster", ""));
  client.data();
  client.rset();
  client.quit();
  BOOST_TEST(client.pendingReplies() == 11u);
  const std::string expected =
      "EHLO gw.example\r\n"
      "HELO gw.example\r\n"
      "MAIL FROM:<alice@example.com>\r\n"
      // No EHLO reply yet: SIZE and 8BITMIME are not known, so no parameters (RFC 1870 §6).
      "MAIL FROM:<>\r\n"
      "MAIL FROM:<a@b.example>\r\n"
      "RCPT TO:<bob@example.org>\r\n"
      "RCPT TO:<postmaster>\r\n"
      "DATA\r\n"
      "RSET\r\n"
      "QUIT\r\n";
  BOOST_TEST(client.outputSize() == expected.size());
  BOOST_TEST(client.takeOutput() == expected);
  BOOST_TEST(!client.hasOutput());
  BOOST_TEST(client.takeOutput() == "");
}

BOOST_AUTO_TEST_CASE(dot_stuffing_whole_and_across_calls) {
  SmtpClient whole;
  whole.data();
  whole.content(".first\r\nmid.dle\r\n.\r\n..two\r\n");
  whole.endOfData();
  BOOST_TEST(whole.takeOutput() == "DATA\r\n..first\r\nmid.dle\r\n..\r\n...two\r\n.\r\n");

  // A CRLF split between two calls still makes the next '.' the start of a line.
  SmtpClient split;
  split.content("a\r");
  split.content("\n.x\r\n");
  split.content("b\r\n");
  split.content(".");
  split.content("y\r\n");
  split.endOfData();
  BOOST_TEST(split.takeOutput() == "a\r\n..x\r\nb\r\n..y\r\n.\r\n");
  BOOST_TEST(split.pendingReplies() == 1u);

  // A '.' in the middle of a line, even at the start of a call, is left alone.
  SmtpClient middle;
  middle.content("abc");
  middle.content(".def\r\n");
  middle.endOfData();
  BOOST_TEST(middle.takeOutput() == "abc.def\r\n.\r\n");
}

BOOST_AUTO_TEST_CASE(bare_lf_counts_as_a_line_start) {
  // Never reaches here from a client (refused in SmtpSession), but must not end the data early.
  SmtpClient client;
  client.content("x\n.\r\n");
  client.endOfData();
  BOOST_TEST(client.takeOutput() == "x\n..\r\n.\r\n");
}

BOOST_AUTO_TEST_CASE(end_of_data_adds_a_missing_crlf) {
  SmtpClient with_crlf;
  with_crlf.content("body\r\n");
  with_crlf.endOfData();
  BOOST_TEST(with_crlf.takeOutput() == "body\r\n.\r\n");

  SmtpClient without;
  without.content("body");
  without.endOfData();
  BOOST_TEST(without.takeOutput() == "body\r\n.\r\n");

  SmtpClient cr_only;
  cr_only.content("body\r");
  cr_only.endOfData();
  BOOST_TEST(cr_only.takeOutput() == "body\r\r\n.\r\n");

  SmtpClient lf_only;
  lf_only.content("body\n");
  lf_only.endOfData();
  BOOST_TEST(lf_only.takeOutput() == "body\n\r\n.\r\n");

  SmtpClient split;
  split.content("body\r");
  split.content("\n");
  split.endOfData();
  BOOST_TEST(split.takeOutput() == "body\r\n.\r\n");

  SmtpClient empty;
  empty.data();
  empty.content("");
  empty.endOfData();
  BOOST_TEST(empty.takeOutput() == "DATA\r\n.\r\n");
}

BOOST_AUTO_TEST_CASE(line_state_resets_for_the_next_message) {
  SmtpClient client;
  client.content("no newline at the end");
  client.endOfData();
  client.content(".second\r\n");
  client.endOfData();
  client.endOfData();
  BOOST_TEST(client.takeOutput() == "no newline at the end\r\n.\r\n..second\r\n.\r\n.\r\n");
  BOOST_TEST(client.pendingReplies() == 3u);
}

BOOST_AUTO_TEST_CASE(greeting_and_ehlo_at_every_split) {
  const std::string server = "220 mx.downstream.example ESMTP\r\n" + ehlo_reply;
  for (std::size_t cut = 0; cut <= server.size(); ++cut) {
    BOOST_TEST_CONTEXT("split at " << cut) {
      SmtpClient client;
      client.expectGreeting();
      client.ehlo("gw.example");
      client.receive(server.substr(0, cut));
      auto first = drain(client);
      client.receive(server.substr(cut));
      auto responses = drain(client);
      responses.insert(responses.begin(), first.begin(), first.end());
      BOOST_TEST(!client.failed());
      BOOST_REQUIRE(responses.size() == 2u);
      BOOST_TEST((responses[0].command == Command::Greeting));
      BOOST_TEST(responses[0].reply.wire() == "220 mx.downstream.example ESMTP\r\n");
      BOOST_TEST((responses[1].command == Command::Ehlo));
      BOOST_TEST(responses[1].reply.code() == 250);
      BOOST_TEST(responses[1].reply.lines().size() == 6u);
      BOOST_TEST(responses[1].reply.lines()[1] == "pipelining");
      BOOST_TEST(responses[1].reply.wire() == ehlo_reply);
      BOOST_TEST(client.pipelining());
      BOOST_TEST(client.eightBitMime());
      BOOST_TEST(client.maxSize().value_or(0) == 10240000u);
      BOOST_TEST(client.pendingReplies() == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(byte_at_a_time_with_bare_lf) {
  SmtpClient client;
  client.expectGreeting();
  for (char c : std::string("220-first\n220 second\n")) client.receive(std::string_view(&c, 1));
  auto response = client.next();
  BOOST_REQUIRE(response.has_value());
  BOOST_TEST(response->reply.wire() == "220-first\r\n220 second\r\n");
  BOOST_TEST(!client.next().has_value());
}

BOOST_AUTO_TEST_CASE(extensions_follow_the_last_greeting) {
  SmtpClient client;
  client.ehlo("gw.example");
  client.receive(ehlo_reply);
  BOOST_TEST(client.pipelining());
  client.ehlo("gw.example");
  client.receive("250-mx\r\n250-SIZE\r\n250 X-PIPELINING\r\n");
  BOOST_TEST(!client.pipelining());
  BOOST_TEST(!client.eightBitMime());
  BOOST_TEST(!client.maxSize().has_value());  // RFC 1870 §4: SIZE without a number, no limit
  client.ehlo("gw.example");
  client.receive("250-mx\r\n250-PIPELINING\r\n250 SIZE 0\r\n");
  BOOST_TEST(client.pipelining());
  BOOST_TEST(!client.maxSize().has_value());
  client.ehlo("gw.example");
  client.receive("502 5.5.1 EHLO not supported\r\n");
  BOOST_TEST(!client.pipelining());
  client.helo("gw.example");
  client.receive("250 mx\r\n");
  BOOST_TEST(!client.pipelining());
  BOOST_TEST(drain(client).size() == 5u);
  BOOST_TEST(!client.failed());
}

BOOST_AUTO_TEST_CASE(mail_parameters_follow_the_advertised_extensions) {
  SmtpClient client;
  client.ehlo("gw.example");
  client.receive("250-mx\r\n250-SIZE 1000\r\n250 8BITMIME\r\n");
  BOOST_TEST(drain(client).size() == 1u);
  client.takeOutput();
  client.mail(pathOf("a", "b.example"), 20, BodyType::SevenBit);
  BOOST_TEST(client.takeOutput() == "MAIL FROM:<a@b.example> SIZE=20 BODY=7BIT\r\n");
  client.ehlo("gw.example");
  client.receive("250 2.1.0 Ok\r\n250-mx\r\n250 SIZE\r\n");
  BOOST_TEST(drain(client).size() == 2u);
  client.takeOutput();
  client.mail(pathOf("a", "b.example"), 20, BodyType::EightBitMime);
  BOOST_TEST(client.takeOutput() == "MAIL FROM:<a@b.example> SIZE=20\r\n");
}

BOOST_AUTO_TEST_CASE(pipelined_replies_pair_in_order) {
  SmtpClient client;
  client.ehlo("gw.example");
  client.receive("250-mx\r\n250-PIPELINING\r\n250-SIZE\r\n250 8BITMIME\r\n");
  BOOST_TEST(drain(client).size() == 1u);
  client.takeOutput();
  client.mail(pathOf("alice", "example.com"), 20, BodyType::EightBitMime);
  client.rcpt(pathOf("bob", "example.org"));
  client.rcpt(pathOf("unknown", "example.org"));
  client.data();
  BOOST_TEST(client.takeOutput() ==
             "MAIL FROM:<alice@example.com> SIZE=20 BODY=8BITMIME\r\n"
             "RCPT TO:<bob@example.org>\r\n"
             "RCPT TO:<unknown@example.org>\r\n"
             "DATA\r\n");
  client.receive(
      "250 2.1.0 Ok\r\n"
      "250 2.1.5 Ok\r\n"
      "550-5.1.1 <unknown@example.org>: Recipient address rejected:\r\n"
      "550 5.1.1 User unknown in virtual mailbox table\r\n"
      "354 End data with <CR><LF>.<CR><LF>\r\n");
  auto responses = drain(client);
  BOOST_REQUIRE(responses.size() == 4u);
  BOOST_TEST((responses[0].command == Command::Mail));
  BOOST_TEST(responses[0].reply.summary() == "250 2.1.0 Ok");
  BOOST_TEST((responses[1].command == Command::Rcpt));
  BOOST_TEST(responses[1].reply.code() == 250);
  BOOST_TEST((responses[2].command == Command::Rcpt));
  BOOST_TEST(responses[2].reply.enhanced() == "5.1.1");
  BOOST_TEST(responses[2].reply.wire() ==
             "550-5.1.1 <unknown@example.org>: Recipient address rejected:\r\n"
             "550 5.1.1 User unknown in virtual mailbox table\r\n");
  BOOST_TEST((responses[3].command == Command::Data));
  BOOST_TEST(responses[3].reply.code() == 354);
  BOOST_TEST(client.pendingReplies() == 0u);

  client.content("Subject: hi\r\n\r\nbody\r\n");
  client.endOfData();
  client.quit();
  client.receive("250 2.0.0 Ok: queued as 4Xyz\r\n221 2.0.0 Bye\r\n");
  responses = drain(client);
  BOOST_REQUIRE(responses.size() == 2u);
  BOOST_TEST((responses[0].command == Command::EndOfData));
  BOOST_TEST((responses[1].command == Command::Quit));
  BOOST_TEST(!client.failed());
}

BOOST_AUTO_TEST_CASE(code_alone_is_a_reply) {
  SmtpClient client;
  client.rset();
  client.receive("250\r\n");
  auto response = client.next();
  BOOST_REQUIRE(response.has_value());
  BOOST_TEST(response->reply.code() == 250);
  BOOST_TEST(response->reply.wire() == "250 \r\n");
}

BOOST_AUTO_TEST_CASE(broken_replies_fail) {
  auto failsWith = [](std::string bytes, std::string_view why) {
    BOOST_TEST_CONTEXT(bytes) {
      SmtpClient client;
      client.expectGreeting();
      client.ehlo("gw.example");
      client.receive(bytes);
      BOOST_TEST(client.failed());
      BOOST_TEST(client.failure().find(why) != std::string::npos, client.failure());
      BOOST_TEST(!client.next().has_value());
      client.receive("250 ok\r\n");  // nothing more is parsed after a failure
      BOOST_TEST(!client.next().has_value());
    }
  };
  failsWith("hello\r\n", "malformed");
  failsWith("22 short\r\n", "malformed");
  failsWith("220xmx\r\n", "malformed");
  failsWith("120 mx\r\n", "malformed");
  failsWith("620 mx\r\n", "malformed");
  failsWith("2a0 mx\r\n", "malformed");
  failsWith("220 mx\rinjected\r\n", "malformed");
  failsWith("220-mx\r\n250 mixed\r\n", "different codes");
  failsWith("220 mx\r\n250 ok\r\n250 surplus\r\n", "unexpected");
  failsWith("220 " + std::string(SmtpClient::max_reply_line_octets, 'x') + "\r\n", "too long");
  // Without a line end at all, the limit still holds (memory stays bounded).
  failsWith(std::string(SmtpClient::max_reply_line_octets, 'x'), "too long");
  std::string many;
  for (std::size_t i = 0; i <= SmtpClient::max_reply_lines; ++i) many += "220-line\r\n";
  failsWith(many, "too many lines");
}

BOOST_AUTO_TEST_CASE(limits_are_inclusive) {
  SmtpClient client;
  client.expectGreeting();
  // A line of exactly max_reply_line_octets, CRLF included, is still fine.
  std::string line = "220 " + std::string(SmtpClient::max_reply_line_octets - 6, 'x') + "\r\n";
  BOOST_REQUIRE(line.size() == SmtpClient::max_reply_line_octets);
  client.receive(line);
  BOOST_TEST(!client.failed());
  BOOST_TEST(client.next().has_value());
  client.ehlo("gw.example");
  std::string many;
  for (std::size_t i = 1; i < SmtpClient::max_reply_lines; ++i) many += "250-line\r\n";
  client.receive(many + "250 last\r\n");
  BOOST_TEST(!client.failed());
  auto response = client.next();
  BOOST_REQUIRE(response.has_value());
  BOOST_TEST(response->reply.lines().size() == SmtpClient::max_reply_lines);
}

BOOST_AUTO_TEST_CASE(reply_before_any_command_is_unexpected) {
  SmtpClient client;
  client.receive("220 mx ESMTP\r\n");
  BOOST_TEST(client.failed());
  BOOST_TEST(!client.next().has_value());
}

BOOST_AUTO_TEST_CASE(failure_drops_replies_already_parsed) {
  SmtpClient client;
  client.expectGreeting();
  client.receive("220 mx\r\nnonsense\r\n");
  BOOST_TEST(client.failed());
  BOOST_TEST(!client.next().has_value());
}

// RFC 5321 §4.3.2: what each command may be answered. A reply outside it is flagged, never taken
// for what its code says: a 250 to DATA is no delivery, a 354 to RCPT no accepted recipient.
BOOST_AUTO_TEST_CASE(replies_out_of_rfc5321_sequence_are_flagged) {
  struct Case {
    Command command;
    std::vector<int> permitted;
    std::vector<int> refused;
  };
  const std::vector<Case> cases = {
      {Command::Greeting, {220, 421, 554, 450}, {250, 221, 354, 211}},
      {Command::Ehlo, {250, 421, 502, 550, 451}, {220, 251, 354, 334}},
      {Command::Helo, {250, 504}, {221, 354}},
      {Command::Mail, {250, 451, 452, 550, 553, 555}, {251, 252, 354, 334, 220}},
      {Command::Rcpt, {250, 251, 450, 550, 551, 503}, {252, 354, 334, 220, 221}},
      {Command::Data, {354, 451, 554, 503, 421}, {250, 251, 220, 221, 334, 300}},
      {Command::EndOfData, {250, 451, 552, 554}, {251, 354, 221}},
      {Command::Rset, {250, 421}, {251, 354, 451, 500, 550}},
      {Command::Quit, {221, 421}, {250, 354, 451, 550}},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(SmtpClient::name(c.command)) {
      for (int code : c.permitted) BOOST_TEST(SmtpClient::permits(c.command, code), code);
      for (int code : c.refused) BOOST_TEST(!SmtpClient::permits(c.command, code), code);
    }
  }
}

BOOST_AUTO_TEST_CASE(each_response_says_whether_its_code_was_permitted) {
  SmtpClient client;
  client.ehlo("gw.example");
  client.receive("250-mx\r\n250 PIPELINING\r\n");
  BOOST_TEST(drain(client).size() == 1u);
  client.mail(pathOf("a", "b.example"), std::nullopt, BodyType::Unspecified);
  client.rcpt(pathOf("c", "d.example"));
  client.rcpt(pathOf("e", "d.example"));
  client.data();
  // A pipelined group answered by a broken server: the flag goes with the reply it belongs to,
  // and parsing goes on (what to do about it is the caller's decision).
  client.receive("250 2.1.0 Ok\r\n354 go on\r\n251 2.1.5 forwarded\r\n250 2.0.0 Ok\r\n");
  auto responses = drain(client);
  BOOST_REQUIRE(responses.size() == 4u);
  BOOST_TEST(responses[0].permitted);
  BOOST_TEST((responses[1].command == Command::Rcpt));
  BOOST_TEST(!responses[1].permitted);
  BOOST_TEST(responses[2].permitted);
  BOOST_TEST((responses[3].command == Command::Data));
  BOOST_TEST(!responses[3].permitted);
  BOOST_TEST(responses[3].reply.summary() == "250 2.0.0 Ok");
  BOOST_TEST(!client.failed());
}

BOOST_AUTO_TEST_CASE(an_ehlo_reply_out_of_sequence_advertises_nothing) {
  SmtpClient client;
  client.ehlo("gw.example");
  client.receive("251-mx\r\n251-PIPELINING\r\n251 8BITMIME\r\n");
  auto responses = drain(client);
  BOOST_REQUIRE(responses.size() == 1u);
  BOOST_TEST(!responses[0].permitted);
  BOOST_TEST(!client.pipelining());
  BOOST_TEST(!client.eightBitMime());
}

// RFC 3207 on the client side: STARTTLS is seen in the EHLO reply, its 220 is paired with it,
// and once TLS is up the extensions heard in the clear are forgotten (EHLO again, §4.2).
BOOST_AUTO_TEST_CASE(starttls_offered_answered_and_forgotten_after_tls) {
  SmtpClient client;
  client.expectGreeting();
  client.ehlo("gw.example");
  client.receive("220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
  BOOST_TEST(drain(client).size() == 2u);
  BOOST_TEST(client.startTlsOffered());
  BOOST_TEST(client.pipelining());
  client.startTls();
  BOOST_TEST(client.takeOutput() == "EHLO gw.example\r\nSTARTTLS\r\n");
  client.receive("220 2.0.0 Ready to start TLS\r\n");
  auto responses = drain(client);
  BOOST_REQUIRE(responses.size() == 1u);
  BOOST_TEST((responses[0].command == Command::StartTls));
  BOOST_TEST(responses[0].permitted);
  client.tlsStarted();
  BOOST_TEST(!client.startTlsOffered());
  BOOST_TEST(!client.pipelining());
  BOOST_TEST(SmtpClient::permits(Command::StartTls, 454));
  BOOST_TEST(!SmtpClient::permits(Command::StartTls, 250));
}

// A reply sent in the clear right behind the 220 to STARTTLS (a man in the middle's injection)
// answers nothing the client asked: the connection fails instead of taking it for a later reply.
BOOST_AUTO_TEST_CASE(a_reply_injected_behind_the_starttls_220_fails_the_connection) {
  SmtpClient client;
  client.startTls();
  client.receive("220 2.0.0 Ready to start TLS\r\n250 2.1.0 Ok\r\n");
  BOOST_TEST(client.failed());
}

BOOST_AUTO_TEST_SUITE_END()


}  // namespace mailgate
