// The gateway's Received: header: its layout, and its lines within RFC 5322 §2.1.1's bounds
// (78 octets where folding can keep them there, 998 always) whatever the client sent.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "gateway/relay/trace_header.h"

namespace mailgate {
namespace {

Path pathOf(std::string local_part, std::string domain) {
  Path path;
  path.mailbox = Mailbox{std::move(local_part), std::move(domain)};
  return path;
}

TraceInfo traceOf(std::string helo, std::vector<Path> recipients) {
  // 2026-11-24 08:00:00 UTC
  auto time = std::chrono::system_clock::time_point(std::chrono::seconds(1795507200));
  return TraceInfo{std::move(helo), "192.0.2.1", "mx.example.org", true, "0123456789ab.1", std::move(recipients), time};
}

std::vector<std::string> linesOf(const std::string& header) {
  BOOST_REQUIRE(header.ends_with("\r\n"));
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < header.size()) {
    std::size_t end = header.find("\r\n", start);
    lines.push_back(header.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(trace_header)

BOOST_AUTO_TEST_CASE(one_recipient) {
  BOOST_TEST(receivedHeader(traceOf("client.example", {pathOf("bob", "example.org")})) ==
             "Received: from client.example ([192.0.2.1])\r\n"
             "\tby mx.example.org (mailgate) with ESMTP id 0123456789ab.1\r\n"
             "\tfor <bob@example.org>; Tue, 24 Nov 2026 08:00:00 +0000\r\n");
}

BOOST_AUTO_TEST_CASE(several_recipients_are_not_named) {
  // RFC 5321 §4.4: naming them all would disclose Bcc recipients. The date folds to its own
  // line where the "by" line would pass 78 octets.
  auto header = receivedHeader(traceOf("client.example", {pathOf("a", "example.org"), pathOf("b", "example.org")}));
  BOOST_TEST(header ==
             "Received: from client.example ([192.0.2.1])\r\n"
             "\tby mx.example.org (mailgate) with ESMTP id 0123456789ab.1;\r\n"
             "\tTue, 24 Nov 2026 08:00:00 +0000\r\n");
}

BOOST_AUTO_TEST_CASE(helo_is_cut_and_no_line_passes_998_octets) {
  // The case: a 990-octet HELO made a 1,019-octet line.
  std::string helo;
  while (helo.size() < 990) helo += std::string(62, 'a') + ".";
  helo.resize(990);
  auto lines = linesOf(receivedHeader(traceOf(helo, {pathOf("bob", "example.org")})));
  for (const auto& line : lines) BOOST_TEST(line.size() <= 998u, line.size());
  std::string cut = helo.substr(0, max_trace_helo_octets);
  BOOST_TEST(lines[0] == "Received: from " + cut);
  BOOST_TEST(lines[1] == "\t([192.0.2.1])");
}

BOOST_AUTO_TEST_CASE(lines_fold_at_78_octets_where_whitespace_allows) {
  // A recipient path may have 256 octets (RFC 5321 §4.5.3.1.3); the date then gets a line of
  // its own, and every line that can be kept to 78 octets is.
  Path long_path = pathOf(std::string(64, 'l'), std::string(180, 'd') + ".example");
  auto lines = linesOf(receivedHeader(traceOf("client.example", {long_path})));
  BOOST_REQUIRE(lines.size() == 4u);
  BOOST_TEST(lines[2] == "\tfor " + long_path.bracketed() + ";");
  BOOST_TEST(lines[3] == "\tTue, 24 Nov 2026 08:00:00 +0000");
  for (std::size_t i : {0u, 1u, 3u}) BOOST_TEST(lines[i].size() <= 78u, lines[i]);
}

BOOST_AUTO_TEST_CASE(control_characters_from_the_client_do_not_break_the_header) {
  auto header = receivedHeader(traceOf("evil\r\nX-Injected: yes (x)", {}));
  BOOST_TEST(header.find("\r\nX-Injected") == std::string::npos);
  BOOST_TEST(linesOf(header)[0] == "Received: from evil??X-Injected:?yes??x? ([192.0.2.1])");
  BOOST_TEST(receivedHeader(traceOf("", {})).starts_with("Received: from unknown ([192.0.2.1])\r\n"));
}

// SmtpSession takes any printable HELO argument. A '"' there would open a quoted-string that
// swallows the rest of the field, a '\' quote the character after it, a parenthesis open or close
// a comment: each becomes '?'. Found by tests/fuzz/auth_results_fuzz.
BOOST_AUTO_TEST_CASE(a_helo_name_cannot_break_the_field) {
  std::string field = receivedHeader(traceOf("a\"b\\c(d)", {pathOf("bob", "example.org")}));
  BOOST_TEST(field.starts_with("Received: from a?b?c?d? ([192.0.2.1])\r\n"), field);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
