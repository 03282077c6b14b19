#pragma once
// The Subject and Message-ID of a message as the decision log shows them, so that a reviewer
// finds "the mail about the invoice" or the one a user forwarded by its Message-ID.

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

#include "gateway/spool/spool.h"

namespace mailgate {

// A subject is a line a person reads; a longer one is cut (at a character, never inside a UTF-8
// sequence) so that a hostile message cannot make its record huge.
constexpr std::size_t max_logged_subject_chars = 200;
// RFC 5322 §3.6.4 gives a msg-id no bound; real ones are under 100 octets. A longer one is cut.
constexpr std::size_t max_logged_message_id_octets = 250;

struct HeaderSummary {
  std::string subject;     // RFC 2047 words decoded, UTF-8, unfolded, control characters removed
  std::string message_id;  // as written ("<id@host>"), unfolded and trimmed, printable ASCII only
};

// The first Subject and Message-ID fields of `header` (the message's start: the header section,
// possibly with some body after it, possibly cut short). A field still open where the text ends
// is not used unless the text is the whole message (`whole`): its rest was not read.
HeaderSummary summarizeHeader(std::string_view header, bool whole);
// The same for a spooled message, reading at most max_header_scan_octets of it.
std::expected<HeaderSummary, std::string> summarizeHeader(const Spool& content);

// `text` as one line for a log: valid UTF-8 (bad sequences become U+FFFD), without control
// characters (C0, DEL, C1) or bidirectional overrides (which make a record read differently from
// what it holds), at most `max_chars` characters.
std::string loggableText(std::string_view text, std::size_t max_chars);

}  // namespace mailgate
