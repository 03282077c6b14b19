#include "gateway/message/header_summary.h"

#include "gateway/c/gmime.h"
#include "gateway/message/outgoing_message.h"
#include "gateway/util/ascii.h"
#include "gateway/util/c_free.h"

namespace mailgate {
namespace {

using GString = std::unique_ptr<char, CFree<&g_free>>;

// RFC 5322 §2.2.3: a line break followed by a blank is folding; unfolding removes the break.
std::string unfolded(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value)
    if (c != '\r' && c != '\n') out += c;
  return trimmed(out);
}

bool isBidiControl(gunichar c) {
  return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f;
}

}  // namespace

std::string loggableText(std::string_view text, std::size_t max_chars) {
  GString valid(g_utf8_make_valid(text.data(), static_cast<gssize>(text.size())));
  std::string out;
  std::size_t chars = 0;
  for (const char* at = valid.get(); *at != '\0' && chars < max_chars; at = g_utf8_next_char(at)) {
    gunichar c = g_utf8_get_char(at);
    if (c == '\t') c = ' ';
    if (g_unichar_iscntrl(c) || isBidiControl(c)) continue;
    char encoded[6];
    out.append(encoded, static_cast<std::size_t>(g_unichar_to_utf8(c, encoded)));
    ++chars;
  }
  return out;
}

HeaderSummary summarizeHeader(std::string_view header, bool whole) {
  HeaderSummary summary;
  bool subject_seen = false;
  bool message_id_seen = false;
  auto take = [&](std::string_view field) {
    auto name = headerFieldName(field);
    if (!name) return;
    std::string_view value = field.substr(field.find(':') + 1);
    if (!subject_seen && equalsIgnoreCase(*name, "Subject")) {
      subject_seen = true;
      initialiseGMime();
      std::string line = unfolded(value);
      GString decoded(g_mime_utils_header_decode_text(nullptr, line.c_str()));
      summary.subject = loggableText(decoded ? std::string_view(decoded.get()) : std::string_view(line),
                                     max_logged_subject_chars);
    } else if (!message_id_seen && equalsIgnoreCase(*name, "Message-ID")) {
      message_id_seen = true;
      std::string id;
      for (char c : unfolded(value))
        if (c > ' ' && c < 0x7f && id.size() < max_logged_message_id_octets) id += c;
      summary.message_id = std::move(id);
    }
  };
  std::size_t field_start = 0;
  std::size_t at = 0;
  while (at < header.size()) {
    std::size_t lf = header.find('\n', at);
    if (lf == std::string_view::npos) {
      // A line still open: not all read. A new field begun there ends the one before it.
      if (!isAsciiSpace(header[at])) {
        if (at > field_start) take(header.substr(field_start, at - field_start));
        field_start = at;
      }
      break;
    }
    bool empty_line = lf == at || (lf == at + 1 && header[at] == '\r');
    if (empty_line || !isAsciiSpace(header[at])) {  // the previous field ended here
      if (at > field_start) take(header.substr(field_start, at - field_start));
      if (empty_line) return summary;
      field_start = at;
    }
    at = lf + 1;
  }
  if (whole && header.size() > field_start) take(header.substr(field_start));
  return summary;
}

std::expected<HeaderSummary, std::string> summarizeHeader(const Spool& content) {
  auto read = content.readPrefix(max_header_scan_octets, true);
  if (!read) return std::unexpected(read.error());
  return summarizeHeader(*read, read->size() == content.size());
}

}  // namespace mailgate
