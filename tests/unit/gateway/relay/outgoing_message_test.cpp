#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>

#include "gateway/relay/outgoing_message.h"

namespace mailgate {
namespace {

std::shared_ptr<Spool> spoolOf(std::string_view content, uint64_t memory_limit = 1 << 20) {
  auto spool = std::make_shared<Spool>(std::filesystem::temp_directory_path().string(), memory_limit);
  BOOST_REQUIRE(spool->append(content));
  return spool;
}

std::string readAll(const OutgoingMessage& message, std::size_t piece) {
  std::string out;
  std::string buffer(piece, '\0');
  while (true) {
    auto count = message.read(out.size(), buffer.data(), buffer.size());
    BOOST_REQUIRE(count);
    if (*count == 0) break;
    out.append(buffer.data(), *count);
  }
  return out;
}

const std::string forged_message =
    "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=evil.example\r\n"
    "Received: from a\r\n"
    "authentication-results: (comment) MX.Example.ORG;\r\n"
    "\tdkim=pass header.d=bank.example\r\n"
    "Authentication-Results: other.example; spf=fail\r\n"
    "Subject: hi\r\n"
    "\r\n"
    "Authentication-Results: mx.example.org; body lines are not headers\r\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(outgoing_message)

BOOST_AUTO_TEST_CASE(authentication_results_header_shape) {
  BOOST_TEST(authenticationResultsHeader("mx.example.org", {}) == "Authentication-Results: mx.example.org; none\r\n");
  BOOST_TEST(authenticationResultsHeader("mx.example.org", {"spf=pass smtp.mailfrom=a.example", "dkim=none"}) ==
             "Authentication-Results: mx.example.org;\r\n\tspf=pass smtp.mailfrom=a.example;\r\n\tdkim=none\r\n");
}

BOOST_AUTO_TEST_CASE(only_fields_claiming_our_authserv_id_in_the_header_are_found) {
  auto spool = spoolOf(forged_message);
  auto ranges = omittedHeaderFields(*spool, "mx.example.org");
  BOOST_REQUIRE(ranges);
  BOOST_REQUIRE(ranges->size() == 2u);
  OutgoingMessage message("X-Added: 1\r\n", spool, *ranges);
  std::string expected =
      "X-Added: 1\r\n"
      "Received: from a\r\n"
      "Authentication-Results: other.example; spf=fail\r\n"
      "Subject: hi\r\n"
      "\r\n"
      "Authentication-Results: mx.example.org; body lines are not headers\r\n";
  BOOST_TEST(message.size() == expected.size());
  for (std::size_t piece : {1u, 2u, 3u, 7u, 64u, 4096u}) BOOST_TEST(readAll(message, piece) == expected, "piece " << piece);
}

BOOST_AUTO_TEST_CASE(spooled_to_disk_reads_the_same) {
  auto spool = spoolOf(forged_message, 16);
  BOOST_REQUIRE(spool->onDisk());
  auto ranges = omittedHeaderFields(*spool, "mx.example.org");
  BOOST_REQUIRE(ranges);
  OutgoingMessage message("", spool, *ranges);
  BOOST_TEST(!message.contiguous());
  BOOST_TEST(readAll(message, 5).find("evil.example") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(nothing_omitted_is_contiguous) {
  auto spool = spoolOf("Subject: x\r\n\r\nbody\r\n");
  auto ranges = omittedHeaderFields(*spool, "mx.example.org");
  BOOST_REQUIRE(ranges);
  BOOST_TEST(ranges->empty());
  OutgoingMessage message("Received: x\r\n", spool, {});
  BOOST_TEST(message.contiguous());
  BOOST_TEST(readAll(message, 3) == "Received: x\r\nSubject: x\r\n\r\nbody\r\n");
}

BOOST_AUTO_TEST_CASE(a_similar_authserv_id_is_not_ours) {
  auto spool = spoolOf("Authentication-Results: mx.example.org.evil; spf=pass\r\n\r\n");
  auto ranges = omittedHeaderFields(*spool, "mx.example.org");
  BOOST_REQUIRE(ranges);
  BOOST_TEST(ranges->empty());
}

BOOST_AUTO_TEST_CASE(replaced_fields_are_dropped_folded_lines_and_all) {
  auto spool = spoolOf("Subject: buy\r\n now\r\nX-Spam-Flag: NO\r\nx-spam-status: No\r\nTo: a\r\n\r\nSubject: body\r\n");
  auto ranges = omittedHeaderFields(*spool, "mx.example.org", {"Subject", "X-Spam-Flag", "X-Spam-Status"});
  BOOST_REQUIRE(ranges);
  OutgoingMessage message("Subject: [SPAM] buy now\r\n", spool, *ranges);
  BOOST_TEST(readAll(message, 4) == "Subject: [SPAM] buy now\r\nTo: a\r\n\r\nSubject: body\r\n");
}

// RFC 5322 §3.6.8 field-name, and §4.5.3 obs-optional: blanks before the colon, any case.
BOOST_AUTO_TEST_CASE(field_names_are_read_as_rfc5322_reads_them) {
  BOOST_TEST(headerFieldName("Authentication-Results: x").value() == "Authentication-Results");
  BOOST_TEST(headerFieldName("Authentication-Results : x").value() == "Authentication-Results");
  BOOST_TEST(headerFieldName("authentication-results:x").value() == "authentication-results");
  BOOST_TEST(headerFieldName("Authentication-Results\t:").value() == "Authentication-Results");
  BOOST_TEST(headerFieldName("Authentication-Results \t :  mx.example;").value() == "Authentication-Results");
  BOOST_TEST(headerFieldName("X-Spam-Level:***").value() == "X-Spam-Level");
  BOOST_TEST(!headerFieldName("no colon here"));
  BOOST_TEST(!headerFieldName(": no name"));
  BOOST_TEST(!headerFieldName("Two Words: x"));
  BOOST_TEST(!headerFieldName(" Authentication-Results: x"));
}

// RFC 8601 §2.2: authserv-id = value (token or quoted-string), after CFWS, before an optional
// version and the ";".
BOOST_AUTO_TEST_CASE(the_authserv_id_is_read_after_comments_and_unquoted) {
  BOOST_TEST(authservIdOf(" mx.example; dmarc=pass").value() == "mx.example");
  BOOST_TEST(authservIdOf("mx.example;").value() == "mx.example");
  BOOST_TEST(authservIdOf(" \"mx.example\"; dmarc=pass").value() == "mx.example");
  BOOST_TEST(authservIdOf(" \"mx\\.example\"; dmarc=pass").value() == "mx.example");
  BOOST_TEST(authservIdOf(" mx.example 1; dmarc=pass").value() == "mx.example");
  BOOST_TEST(authservIdOf(" mx.example (comment) 1; none").value() == "mx.example");
  BOOST_TEST(authservIdOf(" (c) mx.example; dmarc=pass").value() == "mx.example");
  BOOST_TEST(authservIdOf(" (a (nested) \\) comment)\t(two) mx.example;").value() == "mx.example");
  BOOST_TEST(authservIdOf(" mx.example(c); none").value() == "mx.example");
  BOOST_TEST(authservIdOf("  \t mx.example").value() == "mx.example");  // no ";": still the id
  BOOST_TEST(!authservIdOf(" (unclosed mx.example; dmarc=pass"));
  BOOST_TEST(!authservIdOf(" \"mx.example; dmarc=pass"));
  BOOST_TEST(!authservIdOf(" ; dmarc=pass"));
  BOOST_TEST(!authservIdOf(""));
}

BOOST_AUTO_TEST_CASE(forged_fields_in_every_spelling_are_found) {
  // Each is our authserv-id in a form RFC 5322 and RFC 8601 allow; a reader sees "ours" in all.
  const char* forged[] = {
      "Authentication-Results : mx.example.org; dmarc=pass\r\n",
      "authentication-results:mx.example.org; dmarc=pass\r\n",
      "AUTHENTICATION-RESULTS\t: MX.EXAMPLE.ORG; dmarc=pass\r\n",
      "Authentication-Results: \"mx.example.org\"; dmarc=pass\r\n",
      "Authentication-Results: mx.example.org 1; dmarc=pass\r\n",
      "Authentication-Results: (c) mx.example.org; dmarc=pass\r\n",
      "Authentication-Results:\r\n mx.example.org;\r\n\tdmarc=pass\r\n",
      "Authentication-Results:\r\n (a comment\r\n\t folded) \"mx.example.org\"\r\n 1; dmarc=pass\r\n",
      "Authentication-Results: mx.example.org.; dmarc=pass\r\n",
      "Authentication-Results: \"mx.example.org; dmarc=pass\r\n",  // unreadable: dropped too
  };
  for (const char* field : forged) {
    BOOST_TEST_CONTEXT(field) {
      auto spool = spoolOf(std::string("Received: from a\r\n") + field + "Subject: hi\r\n\r\nbody\r\n");
      auto ranges = omittedHeaderFields(*spool, "mx.example.org");
      BOOST_REQUIRE(ranges);
      OutgoingMessage message("", spool, *ranges);
      BOOST_TEST(readAll(message, 4096) == "Received: from a\r\nSubject: hi\r\n\r\nbody\r\n");
    }
  }
}

BOOST_AUTO_TEST_CASE(foreign_authserv_ids_pass_in_every_spelling) {
  const char* foreign[] = {
      "Authentication-Results : other.example; dmarc=pass\r\n",
      "Authentication-Results: \"other.example\"; dmarc=pass\r\n",
      "Authentication-Results: (mx.example.org) other.example 1; dmarc=pass\r\n",
      "Authentication-Results: \"mx.example.org.other\"; dmarc=pass\r\n",
      "Authentication-Results: mx.example.org.evil; spf=pass\r\n",
      "X-Authentication-Results: mx.example.org; dmarc=pass\r\n",
  };
  for (const char* field : foreign) {
    BOOST_TEST_CONTEXT(field) {
      auto spool = spoolOf(std::string(field) + "\r\nbody\r\n");
      auto ranges = omittedHeaderFields(*spool, "mx.example.org");
      BOOST_REQUIRE(ranges);
      BOOST_TEST(ranges->empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_name_ending_in_a_star_stands_for_every_name_so_begun) {
  auto spool = spoolOf(
      "X-Spam-Level: ****\r\nX-Spam-Report: \r\n\tall good\r\nx-spam-checker-version : SpamAssassin\r\n"
      "X-Spam-Status: Yes\r\nX-Spam: yes\r\nX-Spamd-Result: x\r\nSubject: X-Spam-Flag: YES\r\n\r\nX-Spam-Flag: body\r\n");
  auto ranges = omittedHeaderFields(*spool, "mx.example.org", {"X-Spam-*"});
  BOOST_REQUIRE(ranges);
  OutgoingMessage message("", spool, *ranges);
  BOOST_TEST(readAll(message, 5) == "X-Spam: yes\r\nX-Spamd-Result: x\r\nSubject: X-Spam-Flag: YES\r\n\r\nX-Spam-Flag: body\r\n");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
