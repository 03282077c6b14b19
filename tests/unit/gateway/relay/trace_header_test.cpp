// The gateway's Received: field (RFC 5321 §4.4, RFC 5322 §3.6.7) with the client's HELO in it.
#include <boost/test/unit_test.hpp>

#include "gateway/relay/trace_header.h"

namespace mailgate {
namespace {

TraceInfo trace(std::string helo) {
  return TraceInfo{std::move(helo), "192.0.2.1", "mx.example.org", true, "4Xa9Zt", {Path{false, {"bob", "example.org"}}},
                   std::chrono::system_clock::time_point{}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(trace_header)

BOOST_AUTO_TEST_CASE(received_names_the_client_and_the_recipient) {
  BOOST_TEST(receivedHeader(trace("client.example")) ==
             "Received: from client.example ([192.0.2.1])\r\n\tby mx.example.org (mailgate) with ESMTP id 4Xa9Zt\r\n"
             "\tfor <bob@example.org>; Thu, 01 Jan 1970 00:00:00 +0000\r\n");
}

// SmtpSession takes any printable HELO argument. A '"' there would open a quoted-string that
// swallows the rest of the field, a '\' quote the character after it, a parenthesis open or close
// a comment: each becomes '?'. Found by tests/fuzz/auth_results_fuzz.
BOOST_AUTO_TEST_CASE(a_helo_name_cannot_break_the_field) {
  std::string field = receivedHeader(trace("a\"b\\c(d)"));
  BOOST_TEST(field.starts_with("Received: from a?b?c?d? ([192.0.2.1])\r\n"), field);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
