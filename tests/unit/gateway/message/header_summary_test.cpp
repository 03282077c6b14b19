#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include "gateway/message/header_summary.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(header_summary)

BOOST_AUTO_TEST_CASE(first_subject_and_message_id_unfolded) {
  auto summary = summarizeHeader(
      "Received: from x\r\nSUBJECT: Your invoice\r\n  for March\r\nMessage-Id:\r\n <a.1@example.org>\r\n"
      "Subject: second\r\n\r\nSubject: in the body\r\n",
      false);
  BOOST_TEST(summary.subject == "Your invoice  for March");
  BOOST_TEST(summary.message_id == "<a.1@example.org>");
}

BOOST_AUTO_TEST_CASE(rfc2047_words_are_decoded) {
  // RFC 2047 §6.2: adjacent encoded words join without the blank between them.
  auto summary = summarizeHeader("Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?ISO-8859-1?Q?aus_M=FCnchen?=\r\n\r\n", false);
  BOOST_TEST(summary.subject == "Grüßeaus München");
}

BOOST_AUTO_TEST_CASE(control_characters_and_bidi_overrides_are_removed) {
  // An encoded word may carry what a header line cannot: CR, LF, ESC, and U+202E.
  auto summary = summarizeHeader("Subject: =?UTF-8?Q?a=0D=0Ab=1B[31mc=E2=80=AEd=09e?=\r\n\r\n", false);
  BOOST_TEST(summary.subject == "ab[31mcd e");
  auto bytes = summarizeHeader("Subject: bad \xff\xfe bytes\r\nMessage-ID: <x\x01y@z>\r\n\r\n", false);
  BOOST_TEST(bytes.message_id == "<xy@z>");
  BOOST_TEST(bytes.subject.find('\xff') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(long_values_are_bounded) {
  std::string subject;
  for (int i = 0; i < 300; ++i) subject += "\xc3\xa9";  // é, two octets
  auto summary = summarizeHeader("Subject: " + subject + "\r\nMessage-ID: <" + std::string(400, 'm') + ">\r\n\r\n", false);
  BOOST_TEST(summary.subject.size() == 2 * max_logged_subject_chars);  // characters, not octets
  BOOST_TEST(summary.message_id.size() == max_logged_message_id_octets);
}

BOOST_AUTO_TEST_CASE(a_field_cut_off_by_the_end_of_what_was_read_is_not_used) {
  BOOST_TEST(summarizeHeader("Subject: partial\r\n  and more", false).subject == "");
  BOOST_TEST(summarizeHeader("Subject: partial\r\n", false).subject == "");  // a continuation may follow
  BOOST_TEST(summarizeHeader("Subject: whole message\r\n", true).subject == "whole message");
  BOOST_TEST(summarizeHeader("To: x\r\nSubject: done\r\nFrom: y", false).subject == "done");
}

BOOST_AUTO_TEST_CASE(from_a_spool_on_disk) {
  char directory[] = "/tmp/header_summary_XXXXXX";
  BOOST_REQUIRE(mkdtemp(directory) != nullptr);
  {
    Spool spool(directory, 16);  // past 16 octets the content moves to a file
    BOOST_REQUIRE(spool.append("Subject: spooled\r\nMessage-ID: <s@d>\r\n\r\nbody\r\n").has_value());
    BOOST_REQUIRE(spool.onDisk());
    auto summary = summarizeHeader(spool);
    BOOST_REQUIRE(summary.has_value());
    BOOST_TEST(summary->subject == "spooled");
    BOOST_TEST(summary->message_id == "<s@d>");
  }
  rmdir(directory);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
