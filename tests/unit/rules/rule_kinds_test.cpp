// Each kind of rule (header and its modifiers and pseudo-headers, body, rawbody, uri, full,
// mimeheader) loaded from rule text and run on a message, the way the rules stage runs it.

#include <boost/test/unit_test.hpp>

#include <string>

#include "rule_test_support.h"

namespace mailgate::rules {
namespace {

using test::findHit;
using test::loadRules;
using test::scanNames;

const std::string kPlain =
    "From: \"Alice Example\" <alice@example.org>\n"
    "To: bob@example.net\n"
    "Cc: \"Carol\" <carol@example.com>\n"
    "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\n"
    "Message-Id: <abc123@mail.example.org>\n"
    "X-Mailer: TestMailer 1.0\n"
    "\n"
    "Hello Bob,\n"
    "please visit http://www.example.com/offer today.\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(rule_kinds)

BOOST_AUTO_TEST_CASE(header_matches_the_decoded_value_with_flags) {
  auto set = loadRules(
      "header SUBJ_GRUSS Subject =~ /grüße aus/i\n"
      "header SUBJ_CASE Subject =~ /GRÜSSE/\n"
      "header MAILER X-Mailer =~ /^TestMailer \\d/\n");
  BOOST_TEST(scanNames(*set, kPlain) == "MAILER,SUBJ_GRUSS");
}

BOOST_AUTO_TEST_CASE(header_not_match_hits_when_the_regex_fails_and_on_a_missing_header) {
  auto set = loadRules(
      "header NO_TESTMAILER X-Mailer !~ /TestMailer/\n"
      "header NO_OTHER X-Mailer !~ /Outlook/\n"
      "header MISSING_NEG X-Absent !~ /anything/\n");
  BOOST_TEST(scanNames(*set, kPlain) == "MISSING_NEG,NO_OTHER");
}

BOOST_AUTO_TEST_CASE(raw_sees_the_encoded_words_undecoded) {
  auto set = loadRules(
      "header RAW_ENCODED Subject:raw =~ /=\\?UTF-8\\?B\\?/\n"
      "header DECODED_ENCODED Subject =~ /=\\?UTF-8\\?B\\?/\n"
      "header RAW_DECODED Subject:raw =~ /Grüße/\n");
  BOOST_TEST(scanNames(*set, kPlain) == "RAW_ENCODED");
}

BOOST_AUTO_TEST_CASE(addr_and_name_split_address_headers) {
  auto set = loadRules(
      "header FROM_ADDR From:addr =~ /^alice\\@example\\.org$/\n"
      "header FROM_ADDR_HAS_NAME From:addr =~ /Alice/\n"
      "header FROM_NAME From:name =~ /^Alice Example$/\n"
      "header FROM_NAME_HAS_ADDR From:name =~ /\\@/\n"
      "header TO_NAME_ABSENT To:name =~ /./ [if-unset: none]\n");
  // To has an address and no display name: :name has no value, so the if-unset text is tested.
  BOOST_TEST(scanNames(*set, kPlain) == "FROM_ADDR,FROM_NAME,TO_NAME_ABSENT");
}

BOOST_AUTO_TEST_CASE(exists_tests_presence_only) {
  auto set = loadRules(
      "header HAS_MAILER exists:X-Mailer\n"
      "header HAS_MAILER_LC exists:x-mailer\n"
      "header HAS_FOO exists:X-Foo\n");
  BOOST_TEST(scanNames(*set, kPlain) == "HAS_MAILER,HAS_MAILER_LC");
  BOOST_TEST(scanNames(*set, "X-Foo: \n\nbody\n") == "HAS_FOO");
}

BOOST_AUTO_TEST_CASE(if_unset_gives_a_missing_header_a_value) {
  auto set = loadRules(
      "header NO_REFS References =~ /^UNSET$/ [if-unset: UNSET]\n"
      "header NO_REFS_PLAIN References =~ /^$/\n"
      "header MAILER_SET X-Mailer =~ /UNSET/ [if-unset: UNSET]\n");
  // Without if-unset a missing header is tested as "" (Perl's undef), which /^$/ matches.
  BOOST_TEST(scanNames(*set, kPlain) == "NO_REFS,NO_REFS_PLAIN");
  BOOST_TEST(scanNames(*set, "References: <a@b>\nX-Mailer: x\n\nbody\n") == "");
}

BOOST_AUTO_TEST_CASE(all_pseudo_header_is_every_field_with_its_name) {
  auto set = loadRules(
      "header ALL_MAILER ALL =~ /^X-Mailer: TestMailer/m\n"
      "header ALL_DECODED ALL =~ /^Subject: Grüße aus Köln$/m\n"
      "header ALL_ORDER ALL =~ /^From:.*\\n^To:.*\\n^Cc:/m\n"
      "header ALL_BODY ALL =~ /Hello Bob/\n");
  BOOST_TEST(scanNames(*set, kPlain) == "ALL_DECODED,ALL_MAILER,ALL_ORDER");
}

BOOST_AUTO_TEST_CASE(tocc_joins_to_and_cc) {
  auto set = loadRules(
      "header TOCC_BOB ToCc =~ /bob\\@example\\.net/\n"
      "header TOCC_CAROL ToCc =~ /carol\\@example\\.com/\n"
      "header TOCC_ALICE ToCc =~ /alice/\n"
      "header TOCC_ADDRS ToCc:addr =~ /^bob\\@example\\.net\\ncarol\\@example\\.com$/\n");
  BOOST_TEST(scanNames(*set, kPlain) == "TOCC_ADDRS,TOCC_BOB,TOCC_CAROL");
}

BOOST_AUTO_TEST_CASE(envelope_from_comes_from_mail_from) {
  auto set = loadRules(
      "header ENV_BOUNCE EnvelopeFrom =~ /^bounce\\@lists\\.example\\.org$/\n"
      "header ENV_ALICE EnvelopeFrom =~ /alice/\n"
      "header ENV_SET exists:EnvelopeFrom\n");
  BOOST_TEST(scanNames(*set, kPlain, Envelope{"bounce@lists.example.org", {"bob@example.net"}, "192.0.2.1", "mx"}) ==
             "ENV_BOUNCE,ENV_SET");
  // The From header is not the envelope sender.
  BOOST_TEST(scanNames(*set, kPlain) == "");
}

BOOST_AUTO_TEST_CASE(messageid_reads_every_message_id_field) {
  auto set = loadRules(
      "header MSGID_MAIN MESSAGEID =~ /abc123\\@mail\\.example\\.org/\n"
      "header MSGID_X MESSAGEID =~ /xid\\@other/\n"
      "header MSGID_ANY exists:MESSAGEID\n");
  BOOST_TEST(scanNames(*set, kPlain) == "MSGID_ANY,MSGID_MAIN");
  BOOST_TEST(scanNames(*set, "X-Message-Id: <xid@other>\n\nbody\n") == "MSGID_ANY,MSGID_X");
  BOOST_TEST(scanNames(*set, "Subject: none\n\nbody\n") == "");
}

BOOST_AUTO_TEST_CASE(first_and_last_pick_one_of_several_fields) {
  auto set = loadRules(
      "header FIRST_HOP Received:first =~ /from last-hop/\n"
      "header LAST_HOP Received:last =~ /from first-hop/\n"
      "header ANY_FIRST Received =~ /from first-hop/\n");
  const std::string message =
      "Received: from last-hop by mx\nReceived: from first-hop by relay\nSubject: x\n\nbody\n";
  BOOST_TEST(scanNames(*set, message) == "ANY_FIRST,FIRST_HOP,LAST_HOP");
}

BOOST_AUTO_TEST_CASE(body_sees_the_subject_then_the_decoded_text) {
  auto set = loadRules(
      "body BODY_SUBJECT /^Grüße aus Köln$/m\n"
      "body BODY_OFFER /visit http:\\/\\/www\\.example\\.com\\/offer today/\n"
      "body BODY_HEADER /X-Mailer/\n"
      "body BODY_JOINED /Hello Bob, please visit/\n");
  // Body text is one paragraph per line: the line break inside the paragraph is a space.
  BOOST_TEST(scanNames(*set, kPlain) == "BODY_JOINED,BODY_OFFER,BODY_SUBJECT");
}

BOOST_AUTO_TEST_CASE(body_of_base64_html_is_rendered_text_and_rawbody_keeps_the_tags) {
  // "<p>Cheap <b>pills</b></p>" in base64.
  const std::string message =
      "Subject: test\n"
      "MIME-Version: 1.0\n"
      "Content-Type: text/html; charset=utf-8\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "PHA+Q2hlYXAgPGI+cGlsbHM8L2I+PC9wPg==\n";
  auto set = loadRules(
      "body BODY_TEXT /Cheap pills/\n"
      "body BODY_TAGS /<b>/\n"
      "rawbody RAW_TAGS /Cheap <b>pills<\\/b>/\n"
      "rawbody RAW_BASE64 /PHA\\+Q2hl/\n"
      "rawbody RAW_SUBJECT /test/\n");
  BOOST_TEST(scanNames(*set, message) == "BODY_TEXT,RAW_TAGS");
}

BOOST_AUTO_TEST_CASE(uri_sees_links_from_text_and_from_html_href) {
  const std::string message =
      "Subject: links\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/alternative; boundary=\"b1\"\n"
      "\n"
      "--b1\n"
      "Content-Type: text/plain\n"
      "\n"
      "See http://plain.example.com/a for details.\n"
      "--b1\n"
      "Content-Type: text/html\n"
      "\n"
      "<a href=\"https://html.example.net/login?x=1\">click here</a>\n"
      "--b1--\n";
  auto set = loadRules(
      "uri URI_PLAIN m{^http://plain\\.example\\.com/a$}\n"
      "uri URI_HREF m{^https://html\\.example\\.net/login\\?x=1$}\n"
      "uri URI_TEXT /click here/\n");
  BOOST_TEST(scanNames(*set, message) == "URI_HREF,URI_PLAIN");
}

BOOST_AUTO_TEST_CASE(full_sees_the_raw_message_headers_and_encoding_included) {
  const std::string message =
      "Subject: =?UTF-8?B?SGk=?=\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "SGVsbG8gd29ybGQ=\r\n";
  auto set = loadRules(
      "full FULL_ENCODED_SUBJECT /^Subject: =\\?UTF-8\\?B\\?SGk=\\?=$/m\n"
      "full FULL_BASE64 /\\n\\nSGVsbG8gd29ybGQ=\\n/\n"
      "full FULL_CR /\\r/\n"
      "full FULL_DECODED /Hello world/\n");
  // The message is seen with LF line ends and its transfer encoding as sent.
  BOOST_TEST(scanNames(*set, message) == "FULL_BASE64,FULL_ENCODED_SUBJECT");
}

BOOST_AUTO_TEST_CASE(mimeheader_tests_each_part_header) {
  const std::string message =
      "Subject: attachment\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"XX\"\n"
      "\n"
      "--XX\n"
      "Content-Type: text/plain\n"
      "\n"
      "see attached\n"
      "--XX\n"
      "Content-Type: application/octet-stream; name=\"=?UTF-8?B?cmVjaG51bmcuZXhl?=\"\n"
      "Content-Disposition: attachment\n"
      "\n"
      "AAAA\n"
      "--XX--\n";
  auto set = loadRules(
      "mimeheader MIME_EXE Content-Type =~ /name=\"?rechnung\\.exe/i\n"
      "mimeheader MIME_EXE_RAW Content-Type:raw =~ /=\\?UTF-8\\?B\\?cmVjaG51bmcuZXhl/\n"
      "mimeheader MIME_PDF Content-Type =~ /application\\/pdf/\n"
      "mimeheader MIME_NOT_PDF Content-Type !~ /application\\/pdf/\n"
      "header TOP_ONLY Content-Type =~ /octet-stream/\n"
      "mimeheader MIME_TOP_SUBJECT Subject =~ /^attachment$/\n"
      "mimeheader MIME_TOP_CT Content-Type =~ /^multipart\\/mixed/\n");
  // The message itself is the first node: its fields are all there, not just the Content-* ones.
  BOOST_TEST(scanNames(*set, message) == "MIME_EXE,MIME_EXE_RAW,MIME_NOT_PDF,MIME_TOP_CT,MIME_TOP_SUBJECT");
}

BOOST_AUTO_TEST_CASE(mimeheader_if_unset_tests_a_part_without_the_field) {
  // The top part has no Content-Disposition: its if-unset text is what the regex sees.
  const std::string message =
      "Subject: plain\n"
      "Content-Type: text/plain\n"
      "\n"
      "hello\n";
  auto set = loadRules(
      "mimeheader NO_DISPOSITION Content-Disposition =~ /^NONE_GIVEN$/ [if-unset: NONE_GIVEN]\n"
      "mimeheader DISPOSITION_SET Content-Disposition =~ /attachment/ [if-unset: NONE_GIVEN]\n");
  BOOST_TEST(scanNames(*set, message) == "NO_DISPOSITION");
}

BOOST_AUTO_TEST_CASE(each_hit_reports_its_score_and_description) {
  auto set = loadRules(
      "header SUBJ Subject =~ /Köln/\n"
      "score SUBJ 2.5\n"
      "describe SUBJ Subject names a city\n");
  ScanResult result = set->scan(MessageView::parse(kPlain));
  const RuleHit* hit = findHit(result, "SUBJ");
  BOOST_REQUIRE(hit != nullptr);
  BOOST_TEST(hit->score == 2.5);
  BOOST_TEST(hit->description == "Subject names a city");
  BOOST_TEST(result.score == 2.5);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate::rules
