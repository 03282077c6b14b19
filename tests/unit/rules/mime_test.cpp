// MessageView::parse on real MIME: nested multiparts, transfer encodings, RFC 2047 headers and
// body charsets, HTML rendered to text — what body, rawbody, uri, header and mimeheader rules see.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rule_test_support.h"
#include "rules/message_view.h"
#include "rules/uri_extractor.h"

namespace mailgate::rules {
namespace {

const std::filesystem::path kMimeDir = std::filesystem::path(MAILGATE_TEST_DATA "/data/rules/mime");

std::string readMessage(const std::string& name) {
  std::ifstream in(kMimeDir / name, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << (kMimeDir / name));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string concatenated(const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) out += piece;
  return out;
}

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

bool hasUri(const MessageView& view, const std::string& uri) {
  return std::find(view.uris().begin(), view.uris().end(), uri) != view.uris().end();
}

std::string listed(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& value : values) out += "\n  [" + value + "]";
  return out;
}

// The decoded value of the first `name` header, without its final newline.
std::string decodedHeader(const MessageView& view, const std::string& name) {
  std::vector<std::string> values = view.header(name, false);
  BOOST_REQUIRE_MESSAGE(!values.empty(), "no " << name << " header");
  std::string value = values.front();
  if (value.ends_with('\n')) value.pop_back();
  return value;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mime)

BOOST_AUTO_TEST_CASE(nested_multipart_renders_every_text_leaf_and_nothing_else) {
  MessageView view = MessageView::parse(readMessage("nested_multipart.eml"));
  const std::string body = concatenated(view.body());
  // The Subject comes first, decoded from ISO-8859-1 quoted-printable words.
  BOOST_REQUIRE(!view.body().empty());
  BOOST_TEST(view.body().front() == "Ihre Bestellung für München\n");
  // text/plain: quoted-printable undone (soft line break joined), ISO-8859-1 made UTF-8.
  BOOST_TEST(contains(body, "Grüße aus München! Ihre Bestellung ist unterwegs: https://track.shop.example/parcel/42"), body);
  // text/html: base64 undone, rendered.
  BOOST_TEST(contains(body, "Html version: Your order"), body);
  BOOST_TEST(!contains(body, "<a href"), body);
  // message/rfc822: the inner message's text is a leaf too.
  BOOST_TEST(contains(body, "The inner message text."), body);
  // Neither the preamble nor the attachment is text a reader sees.
  BOOST_TEST(!contains(body, "preamble"), body);
  BOOST_TEST(!contains(body, "INVOICESECRET"), body);
  BOOST_TEST(!contains(concatenated(view.rawbody()), "INVOICESECRET"));
  BOOST_TEST(!view.truncated());
}

BOOST_AUTO_TEST_CASE(nested_multipart_gives_each_part_its_own_headers) {
  MessageView view = MessageView::parse(readMessage("nested_multipart.eml"));
  std::vector<std::string> types;
  for (const auto& part : view.mimeParts()) {
    std::string type = "(none)";
    for (const MessageHeader& header : part)
      if (header.name == "Content-Type") type = header.decoded.substr(0, header.decoded.find(';'));
    types.push_back(type);
  }
  // The inner message of the rfc822 part is a node of its own, without a Content-Type.
  std::vector<std::string> expected = {"multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                                       "application/pdf", "message/rfc822", "(none)"};
  BOOST_TEST(types == expected, boost::test_tools::per_element());
  // A message and its body are one node with every field of the message, in the order written,
  // as in SpamAssassin's tree: mimeheader rules see From and Subject there.
  auto names = [&](std::size_t part) {
    std::string out;
    for (const MessageHeader& header : view.mimeParts().at(part)) out += header.name + ",";
    return out;
  };
  BOOST_TEST(names(0) == "From,To,Subject,Message-ID,Date,MIME-Version,Content-Type,");
  BOOST_TEST(names(2) == "Content-Type,Content-Transfer-Encoding,");
  BOOST_TEST(names(6) == "From,Subject,");
  BOOST_TEST(view.mimeParts().at(6).at(1).decoded == "Forwarded inner message");
}

BOOST_AUTO_TEST_CASE(rawbody_keeps_html_and_charset_but_undoes_transfer_encoding) {
  MessageView view = MessageView::parse(readMessage("nested_multipart.eml"));
  const std::string raw = concatenated(view.rawbody());
  BOOST_TEST(contains(raw, "<a href=\"https://www.shop.example/orders?id=42\">Your order</a>"), raw);
  BOOST_TEST(contains(raw, "Gr\xfc\xdf" "e aus M\xfcnchen"), raw);  // still ISO-8859-1
  BOOST_TEST(!contains(raw, "=FC"), raw);
  BOOST_TEST(!contains(raw, "PGh0bWw"), raw);
}

BOOST_AUTO_TEST_CASE(uris_come_from_text_and_from_href) {
  MessageView view = MessageView::parse(readMessage("nested_multipart.eml"));
  BOOST_TEST(hasUri(view, "https://track.shop.example/parcel/42"), listed(view.uris()));
  BOOST_TEST(hasUri(view, "https://www.shop.example/orders?id=42"), listed(view.uris()));
}

BOOST_AUTO_TEST_CASE(base64_text_part_is_decoded_for_body_rules) {
  MessageView view = MessageView::parse(
      "Subject: b64\n"
      "MIME-Version: 1.0\n"
      "Content-Type: text/plain; charset=UTF-8\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "RGllcyBpc3QgZWluIFRleHQgaW4gQmFzZTY0IG1pdCBVbWxhdXRlbjogw6TDtsO8Lgo=\n");
  BOOST_TEST(concatenated(view.body()) == "b64\nDies ist ein Text in Base64 mit Umlauten: äöü. ");
  BOOST_TEST(concatenated(view.rawbody()) == "Dies ist ein Text in Base64 mit Umlauten: äöü.\n");
}

BOOST_AUTO_TEST_CASE(quoted_printable_part_is_decoded_and_its_charset_converted) {
  MessageView view = MessageView::parse(
      "Subject: qp\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=ISO-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "Sch=F6ne Gr=FC=DFe, a very long line that was wrapped with a soft =\r\n"
      "break, and =3D an equals sign.\r\n");
  BOOST_TEST(concatenated(view.body()) ==
             "qp\nSchöne Grüße, a very long line that was wrapped with a soft break, and = an equals sign. ");
}

BOOST_AUTO_TEST_CASE(eight_bit_bodies_in_other_charsets_become_utf8) {
  MessageView koi8 = MessageView::parse(
      "Subject: koi8\n"
      "Content-Type: text/plain; charset=koi8-r\n"
      "Content-Transfer-Encoding: 8bit\n"
      "\n"
      "\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2\n");
  BOOST_TEST(koi8.body().back() == "Привет мир ");
  // Mislabelled: declared UTF-8 but not valid UTF-8 is read as Windows-1252.
  MessageView mislabelled = MessageView::parse(
      "Subject: cp1252\n"
      "Content-Type: text/plain; charset=utf-8\n"
      "\n"
      "\x93quoted\x94 \x80" "5\n");
  BOOST_TEST(mislabelled.body().back() == "“quoted” €5 ");
}

BOOST_AUTO_TEST_CASE(rfc2047_headers_in_several_charsets) {
  MessageView view = MessageView::parse(
      "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\n"
      "X-Latin1: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\n"
      "X-Koi8: =?KOI8-R?B?8NLJ18XUIM3J0g==?=\n"
      "X-Japanese: =?ISO-2022-JP?B?GyRCRnxLXDhsJE4lYSE8JWsbKEI=?=\n"
      "X-Windows: =?windows-1252?Q?=93quoted=94?= and plain\n"
      "X-Adjacent: =?UTF-8?Q?one?= =?UTF-8?Q?_two?=\n"
      "X-Folded: =?UTF-8?Q?folded?=\n"
      " continuation\n"
      "Message-ID: <=?UTF-8?B?bm90?=@example>\n"
      "\n"
      "body\n");
  BOOST_TEST(decodedHeader(view, "Subject") == "Grüße aus Köln");
  BOOST_TEST(decodedHeader(view, "X-Latin1") == "Café crème");
  BOOST_TEST(decodedHeader(view, "X-Koi8") == "Привет мир");
  BOOST_TEST(decodedHeader(view, "X-Japanese") == "日本語のメール");
  BOOST_TEST(decodedHeader(view, "x-windows") == "“quoted” and plain");
  // Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2).
  BOOST_TEST(decodedHeader(view, "X-Adjacent") == "one two");
  BOOST_TEST(decodedHeader(view, "X-Folded") == "folded continuation");
  // Message-ID carries no encoded words: it is left as written.
  BOOST_TEST(decodedHeader(view, "Message-ID") == "<=?UTF-8?B?bm90?=@example>");
  // The raw value keeps the encoding and the folding.
  std::vector<std::string> raw = view.header("X-Folded", true);
  BOOST_REQUIRE(raw.size() == 1u);
  BOOST_TEST(raw[0] == " =?UTF-8?Q?folded?=\n continuation\n");
}

BOOST_AUTO_TEST_CASE(eight_bit_headers_are_utf8_or_windows_1252) {
  MessageView view = MessageView::parse("Subject: Gr\xc3\xbc\xc3\x9f" "e\nX-Latin: Gr\xfc\xdf" "e\n\nbody\n");
  BOOST_TEST(decodedHeader(view, "Subject") == "Grüße");
  BOOST_TEST(decodedHeader(view, "X-Latin") == "Grüße");
}

BOOST_AUTO_TEST_CASE(html_only_mail_is_rendered_to_text) {
  MessageView view = MessageView::parse(readMessage("html_only.eml"));
  const std::string body = concatenated(view.body());
  // &nbsp; is a no-break space, which whitespace collapsing makes a plain one (as Perl's \s+ does).
  BOOST_TEST(contains(body, "Fish & chips for 5 € – café €3 ABC “quoted”"), body);
  BOOST_TEST(contains(body, "Click here now"), body);
  BOOST_TEST(contains(body, "Deal"), body);  // the title is text
  BOOST_TEST(!contains(body, "secret-script-text"), body);
  BOOST_TEST(!contains(body, "color: red"), body);
  BOOST_TEST(!contains(body, "hidden comment"), body);
  BOOST_TEST(!contains(body, "<"), body);
  // rawbody: the HTML as sent, quoted-printable undone, the charset not converted.
  const std::string raw = concatenated(view.rawbody());
  BOOST_TEST(contains(raw, "<script type=\"text/javascript\">var tracking = \"secret-script-text\";</script>"), raw);
  BOOST_TEST(contains(raw, "\x93quoted\x94"), raw);
}

BOOST_AUTO_TEST_CASE(html_only_mail_gives_the_uris_of_its_tags) {
  MessageView view = MessageView::parse(readMessage("html_only.eml"));
  // Entities in attributes are decoded: &amp; is &.
  BOOST_TEST(hasUri(view, "http://deals.example/buy?item=7&ref=mail"), listed(view.uris()));
  BOOST_TEST(hasUri(view, "https://img.deals.example/pixel.gif"), listed(view.uris()));
  BOOST_TEST(hasUri(view, "https://collect.deals.example/post"), listed(view.uris()));
}

BOOST_AUTO_TEST_CASE(html_only_mail_through_rules) {
  auto set = test::loadRules(
      "body HTML_BODY /Fish & chips/\n"
      "body HTML_TAG /<p>/\n"
      "rawbody HTML_RAW /<p>Fish &amp; chips/\n"
      "uri HTML_HREF /^http:\\/\\/deals\\.example\\/buy/\n"
      "body HTML_SCRIPT /secret-script-text/\n"
      "rawbody RAW_SCRIPT /secret-script-text/\n");
  BOOST_TEST(test::scanNames(*set, readMessage("html_only.eml")) == "HTML_BODY,HTML_HREF,HTML_RAW,RAW_SCRIPT");
}

BOOST_AUTO_TEST_CASE(a_message_without_mime_headers_is_plain_text) {
  MessageView view = MessageView::parse("Subject: plain\n\nLine one\nline two\n\nNext paragraph\n");
  std::vector<std::string> expected = {"plain\n", "Line one line two\n", "Next paragraph "};
  BOOST_TEST(view.body() == expected, boost::test_tools::per_element());
  BOOST_TEST(concatenated(view.rawbody()) == "Line one\nline two\n\nNext paragraph\n");
}

BOOST_AUTO_TEST_CASE(a_message_without_subject_or_body) {
  MessageView view = MessageView::parse("From: a@example.org\n");
  BOOST_REQUIRE(!view.body().empty());
  BOOST_TEST(view.body().front() == "\n");  // body rules see an empty line for the Subject
  BOOST_TEST(view.uris().empty());
}

BOOST_AUTO_TEST_CASE(a_repeated_link_does_not_use_up_the_uri_bound) {
  // The bound counts distinct URIs: a thousand copies of one image do not hide the link after it.
  std::string html = "Subject: pixels\nContent-Type: text/html\n\n<html><body>";
  for (std::size_t i = 0; i < UriExtractor::max_uris + 10; ++i) html += "<img src=\"http://cdn.example.com/p.gif\">";
  html += "<a href=\"http://login.example.net/verify\">verify</a></body></html>\n";
  MessageView view = MessageView::parse(html);
  BOOST_TEST(hasUri(view, "http://login.example.net/verify"), listed(view.uris()));
  BOOST_TEST(!view.truncated());
}

BOOST_AUTO_TEST_CASE(more_distinct_links_than_the_bound_are_cut_and_said) {
  std::string text = "Subject: links\n\n";
  for (std::size_t i = 0; i <= UriExtractor::max_uris; ++i) text += "see http://l" + std::to_string(i) + ".example.org/\n";
  MessageView view = MessageView::parse(text);
  BOOST_TEST(hasUri(view, "http://l0.example.org/"));
  BOOST_TEST(!hasUri(view, "http://l" + std::to_string(UriExtractor::max_uris) + ".example.org/"));
  BOOST_TEST(view.truncated());
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_bounded) {
  std::string message = "Subject: deep\nMIME-Version: 1.0\n";
  const int depth = MessageView::max_mime_depth + 5;
  for (int i = 0; i < depth; ++i)
    message += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" + std::to_string(i) + "\n";
  message += "Content-Type: text/plain\n\ndeepest text\n";
  for (int i = depth - 1; i >= 0; --i) message += "--b" + std::to_string(i) + "--\n";
  MessageView view = MessageView::parse(message);
  BOOST_TEST(view.truncated());
  BOOST_TEST(!contains(concatenated(view.body()), "deepest text"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate::rules
