// libFuzzer target for the message decoding the rule engine reads (tests/fuzz/README.md): the
// MIME decoder (rules/message_decoder, rules/message_view: GMime's tree, transfer encodings,
// charsets, RFC 2047 words) and HTML to text (rules/html_text). The input is a message. It is
// parsed into a MessageView, and also taken as one HTML document (converted to UTF-8 first, as a
// part's charset would be). Findings, besides crashes and sanitizer reports:
//  - text promised as UTF-8 that is not (body lines, decoded header values, toUtf8(), rendered
//    HTML, decodeHtmlEntities());
//  - output out of proportion to the input: body text over 4 octets per input octet (3 for a
//    charset's worst case to UTF-8, and room for the line breaks added), rawbody over the input,
//    HTML text over its document, URIs over 64 octets per input octet (each found URI comes back
//    with a handful of canonical variants);
//  - a body line longer than max_body_line_length or not one line, a rawbody piece longer
//    than two of them, a raw header value over max_header_value_length, more MIME parts than
//    max_mime_parts, more URIs than max_uris with their variants.

#include <algorithm>
#include <string>

#include "rules/charset.h"
#include "rules/html_text.h"
#include "rules/message_view.h"
#include "rules/uri_extractor.h"
#include "tests/fuzz/fuzz_support.h"

namespace mailgate::rules {
namespace {

using fuzz::isUtf8;
using fuzz::require;

// The most canonical variants one URI comes back with, nested redirect targets included, that the
// size bound above allows for.
constexpr std::size_t uri_octets_per_input_octet = 64;

void checkHeaders(const std::vector<MessageHeader>& headers) {
  for (const MessageHeader& header : headers) {
    require(header.raw.size() <= MessageView::max_header_value_length, "raw header value over the bound", header.name);
    require(isUtf8(header.decoded), "decoded header value not UTF-8", header.decoded);
  }
}

void checkView(const MessageView& view, std::size_t input_size) {
  checkHeaders(view.headers());
  require(view.mimeParts().size() <= MessageView::max_mime_parts, "more MIME parts than max_mime_parts");
  for (const auto& part : view.mimeParts()) checkHeaders(part);

  std::size_t body_octets = 0;
  for (const std::string& line : view.body()) {
    // Message.pm cuts after the last blank of /^(.{30,2048}\s)/: the blank may be octet 2049.
    require(line.size() <= MessageView::max_body_line_length + 1, "body line over max_body_line_length", line);
    // At most one newline, at the end (message_view.h: the pieces cut and the last line have none).
    std::size_t newline = line.find('\n');
    require(newline == std::string::npos || newline + 1 == line.size(), "body line not one line", line);
    require(isUtf8(line), "body line not UTF-8", line);
    body_octets += line.size();
  }
  require(body_octets <= 4 * input_size + 1, "body text out of proportion to the message");

  std::size_t rawbody_octets = 0;
  for (const std::string& piece : view.rawbody()) {
    require(piece.size() <= 2 * MessageView::max_body_line_length, "rawbody piece over two line lengths");
    rawbody_octets += piece.size();
  }
  require(rawbody_octets <= input_size, "rawbody larger than the message");

  std::size_t uri_octets = 0;
  for (const std::string& uri : view.uris()) uri_octets += uri.size();
  require(uri_octets <= uri_octets_per_input_octet * input_size, "URIs out of proportion to the message");
}

void checkHtml(std::string_view input) {
  std::string utf8 = toUtf8(input, "utf-8");
  require(isUtf8(utf8), "toUtf8 output not UTF-8", utf8);
  require(utf8.size() <= 3 * input.size(), "toUtf8 output over 3 octets per input octet");
  HtmlText html = HtmlText::render(utf8);
  require(isUtf8(html.text), "rendered HTML not UTF-8", html.text);
  require(html.text.size() <= utf8.size(), "rendered HTML larger than the document");
  for (const std::string& uri : html.uris) require(uri.size() <= utf8.size(), "a URI larger than the document");
  std::string decoded = decodeHtmlEntities(utf8);
  require(isUtf8(decoded), "decoded entities not UTF-8", decoded);
  require(decoded.size() <= utf8.size(), "decoded entities larger than the text");
}

}  // namespace
}  // namespace mailgate::rules

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate::rules;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  MessageView view = MessageView::parse(input, Envelope{"sender@example.com", {"rcpt@example.org"}, "192.0.2.1", "helo.example"});
  checkView(view, size);
  checkHtml(input);
  return 0;
}
