#pragma once
// What rules look at, decoded once per message with GMime 3: header values (raw and decoded),
// the rendered body text, the undecoded-charset text parts, the URIs, and the whole message —
// each the way SpamAssassin 4 presents it to header, body, rawbody, uri, full and mimeheader
// rules (Mail::SpamAssassin::Message, Message::Node, PerMsgStatus::get).
//
// The message is scanned with LF line ends (a CRLF from SMTP becomes LF), as SpamAssassin sees a
// message an MTA hands to it, so rules written for it match the same.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::rules {

struct Envelope {
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  std::string client_ip;
  std::string helo;
};

struct MessageHeader {
  std::string name;     // as written, without trailing blanks
  std::string raw;      // everything after the colon, folding kept, LF line ends, ending in "\n"
  std::string decoded;  // unfolded, trimmed, RFC 2047 words decoded, UTF-8, no final newline
};

// The last field named `name` (any case) of a header block, or null.
const MessageHeader* lastField(const std::vector<MessageHeader>& fields, std::string_view name);

class MessageView {
 public:
  // Bounds (a hostile message costs at most these). SpamAssassin's own values where it has them.
  static constexpr std::size_t max_mime_parts = 1000;      // parts looked at; the rest is not scanned
  static constexpr int max_mime_depth = 20;                // multipart / message nesting followed
  static constexpr std::size_t body_part_scan_size = 50'000;      // SA body_part_scan_size: rendered text per part
  static constexpr std::size_t rawbody_part_scan_size = 500'000;  // SA rawbody_part_scan_size: per part
  static constexpr std::size_t max_body_line_length = 2048;       // SA MAX_BODY_LINE_LENGTH
  static constexpr std::size_t max_header_value_length = 8192;    // SA MAX_HEADER_VALUE_LENGTH
  static constexpr std::size_t max_header_length = 65'536;        // SA MAX_HEADER_LENGTH: the ALL pseudo-header

  static MessageView parse(std::string_view raw_message, Envelope envelope = {});
  // A header field as rules see it: `raw` cut to max_header_value_length, and decoded.
  static MessageHeader field(std::string name, std::string raw);

  const Envelope& envelope() const { return envelope_; }
  const std::vector<MessageHeader>& headers() const { return headers_; }

  // The values SpamAssassin's get() returns for `name` (case-insensitive): decoded ones end in
  // "\n", raw ones are as received. Pseudo-headers: ALL (every field, "Name: value\n"), ToCc
  // (To and Cc), EnvelopeFrom (MAIL FROM), MESSAGEID (X-Message-Id, Resent-Message-Id,
  // X-Original-Message-ID, Message-Id). No value: the header is absent.
  std::vector<std::string> header(std::string_view name, bool raw) const;

  // Body rules: the Subject, then the text parts rendered (charsets to UTF-8, HTML to text),
  // whitespace collapsed, one line per paragraph (cut at max_body_line_length), each ending "\n" but
  // the pieces cut and the last line (Message.pm splits the text so; a space ends the last paragraph).
  const std::vector<std::string>& body() const { return body_; }
  // Rawbody rules: text/* and message/* parts, transfer encoding undone, charset and HTML kept,
  // in pieces of at most two max_body_line_length.
  const std::vector<std::string>& rawbody() const { return rawbody_; }
  // Uri rules: every URI in the text and the HTML tags, with its canonical variants, each once.
  const std::vector<std::string>& uris() const { return uris_; }
  // Full rules: the whole message.
  std::string_view full() const { return full_; }
  // Mimeheader rules: each MIME part's own header fields, in document order.
  const std::vector<std::vector<MessageHeader>>& mimeParts() const { return mime_parts_; }
  // Whether a bound above cut something.
  bool truncated() const { return truncated_; }

 private:
  friend class MessageDecoder;

  Envelope envelope_;
  std::string full_;
  std::vector<MessageHeader> headers_;
  std::vector<std::string> body_;
  std::vector<std::string> rawbody_;
  std::vector<std::string> uris_;
  std::vector<std::vector<MessageHeader>> mime_parts_;
  bool truncated_ = false;
};

}  // namespace mailgate::rules
