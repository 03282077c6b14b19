#include "rules/message_decoder.h"

#include <array>
#include <cctype>
#include <iterator>
#include <unordered_set>

#include "rules/charset.h"
#include "gateway/c/gmime.h"
#include "rules/html_text.h"
#include "rules/uri_extractor.h"
#include "gateway/util/ascii.h"

namespace mailgate::rules {
namespace {

struct Leaf {
  std::string type;     // "text/plain", lower case
  std::string charset;  // as declared, may be empty
  std::string content;  // transfer encoding undone (text/* and message/* only)
};

struct Walk {
  std::vector<Leaf> leaves;
  std::vector<std::vector<MessageHeader>> mime_parts;
  std::size_t parts = 0;
  bool truncated = false;
};

std::vector<MessageHeader> headersOf(GMimeObject* object) {
  std::vector<MessageHeader> headers;
  GMimeHeaderList* list = g_mime_object_get_header_list(object);
  if (list == nullptr) return headers;
  int count = g_mime_header_list_get_count(list);
  for (int i = 0; i < count; ++i) {
    GMimeHeader* header = g_mime_header_list_get_header_at(list, i);
    const char* name = g_mime_header_get_name(header);
    const char* raw = g_mime_header_get_raw_value(header);
    std::string value = raw != nullptr ? raw : "";
    std::erase(value, '\r');
    headers.push_back(MessageView::field(name != nullptr ? name : "", std::move(value)));
  }
  return headers;
}

std::string decodedContent(GMimePart* part) {
  GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
  if (wrapper == nullptr) return {};
  GMimeRef<GMimeStream> out(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(wrapper, out.get());
  GByteArray* array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  return std::string(reinterpret_cast<const char*>(array->data), array->len);
}

// `message`: the message whose body `object` is, or null for a part of a multipart. A message
// and its body are one node in SpamAssassin's tree, with every header field of the message (so a
// mimeheader rule sees From and Subject there); GMime splits them, the Content-* ones on the body.
void walk(GMimeObject* object, GMimeMessage* message, int depth, Walk& state) {
  if (object == nullptr) return;
  if (state.parts >= MessageView::max_mime_parts || depth > MessageView::max_mime_depth) {
    state.truncated = true;
    return;
  }
  ++state.parts;
  std::vector<MessageHeader> headers;
  // The top node's fields are set by decode(): the view's own, in the order written.
  if (depth > 0) {
    headers = headersOf(object);
    if (message != nullptr) {
      std::vector<MessageHeader> all = headersOf(GMIME_OBJECT(message));
      all.insert(all.end(), std::make_move_iterator(headers.begin()), std::make_move_iterator(headers.end()));
      headers = std::move(all);
    }
  }
  state.mime_parts.push_back(std::move(headers));
  if (GMIME_IS_MULTIPART(object)) {
    GMimeMultipart* multipart = GMIME_MULTIPART(object);
    int count = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < count; ++i) walk(g_mime_multipart_get_part(multipart, i), nullptr, depth + 1, state);
    return;
  }
  if (GMIME_IS_MESSAGE_PART(object)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
    if (inner != nullptr) walk(g_mime_message_get_mime_part(inner), inner, depth + 1, state);
    return;
  }
  if (!GMIME_IS_PART(object)) return;
  Leaf leaf;
  GMimeContentType* content_type = g_mime_object_get_content_type(object);
  if (content_type != nullptr) {
    char* mime_type = g_mime_content_type_get_mime_type(content_type);
    leaf.type = asciiLower(mime_type != nullptr ? mime_type : "text/plain");
    g_free(mime_type);
    const char* charset = g_mime_content_type_get_parameter(content_type, "charset");
    if (charset != nullptr) leaf.charset = charset;
  } else {
    leaf.type = "text/plain";
  }
  // Only text is ever looked at: images and other attachments are not decoded at all.
  if (leaf.type.starts_with("text/") || leaf.type.starts_with("message/")) leaf.content = decodedContent(GMIME_PART(object));
  state.leaves.push_back(std::move(leaf));
}

// SpamAssassin's truncation of a part to its scan size: at a line end (or the next of
// `preferred`) within 1 KiB after the limit, else at the limit.
// The length `text` is scanned to: all of it, or `limit` moved to just after the next of the
// `preferred` characters when one comes within 1 KiB.
std::size_t partScanLength(std::string_view text, std::size_t limit, std::string_view preferred) {
  if (text.size() <= limit) return text.size();
  for (char at : preferred) {
    std::size_t index = text.find(at, limit);
    if (index != std::string_view::npos && index - limit <= 1024) return index + 1;
  }
  return limit;
}

// Length of the whitespace character (Perl's \s on Unicode text) at text[at], 0 when none.
std::size_t whitespaceAt(std::string_view text, std::size_t at) {
  unsigned char c = static_cast<unsigned char>(text[at]);
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  auto byte = [&](std::size_t k) { return at + k < text.size() ? static_cast<unsigned char>(text[at + k]) : 0; };
  if (c == 0xc2 && (byte(1) == 0x85 || byte(1) == 0xa0)) return 2;
  if (c == 0xe1 && byte(1) == 0x9a && byte(2) == 0x80) return 3;
  if (c == 0xe2 && byte(1) == 0x80 && ((byte(2) >= 0x80 && byte(2) <= 0x8a) || byte(2) == 0xa8 || byte(2) == 0xa9 || byte(2) == 0xaf))
    return 3;
  if (c == 0xe2 && byte(1) == 0x81 && byte(2) == 0x9f) return 3;
  if (c == 0xe3 && byte(1) == 0x80 && byte(2) == 0x80) return 3;
  return 0;
}

// Whether an octet can start a character whitespaceAt() takes: ASCII whitespace, the UTF-8 leads.
constexpr std::array<bool, 256> whitespace_lead = [] {
  std::array<bool, 256> lead{};
  for (unsigned char c : {' ', '\t', '\n', '\v', '\f', '\r'}) lead[c] = true;
  for (unsigned char c : {0xc2, 0xe1, 0xe2, 0xe3}) lead[c] = true;
  return lead;
}();

// s/\n+\s*\n+/\x00/g; s/\s+/ /g; tr/\x00/\n/ — a blank line ends a paragraph, all other
// whitespace is one space.
std::string collapseWhitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t length = whitespaceAt(text, i);
    if (length == 0) {  // copied a run at a time: only ASCII whitespace and these leads can start \s
      std::size_t next = i + 1;
      while (next < text.size() && !whitespace_lead[static_cast<unsigned char>(text[next])]) ++next;
      out.append(text, i, next - i);
      i = next;
      continue;
    }
    std::size_t run_start = i, first_newline = std::string::npos, last_newline = 0, newlines = 0;
    while (i < text.size() && (length = whitespaceAt(text, i)) > 0) {
      if (text[i] == '\n') {
        if (newlines++ == 0) first_newline = i;
        last_newline = i;
      }
      i += length;
    }
    if (newlines < 2) {
      out += ' ';
      continue;
    }
    if (first_newline > run_start) out += ' ';
    out += '\n';
    if (last_newline + 1 < i) out += ' ';
  }
  return out;
}

// Message.pm split_into_array_of_short_lines: one entry per line (with its "\n"), long lines cut
// at the last space within the limit.
void appendShortLines(std::string_view text, std::vector<std::string>& out) {
  constexpr std::size_t limit = MessageView::max_body_line_length;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t newline = text.find('\n', start);
    std::size_t end = newline == std::string_view::npos ? text.size() : newline + 1;
    std::string_view line = text.substr(start, end - start);
    while (line.size() > limit) {
      std::size_t space = line.substr(0, limit + 1).rfind(' ');
      std::size_t cut = space == std::string_view::npos ? limit : space + 1;
      out.emplace_back(line.substr(0, cut));
      line.remove_prefix(cut);
    }
    out.emplace_back(line);
    start = end;
  }
}

// Message.pm split_into_array_of_short_paragraphs: pieces of 1..2 times the line limit, cut
// after a newline, a '>' or a space where possible.
void appendShortParagraphs(std::string_view text, std::vector<std::string>& out) {
  constexpr std::size_t limit = MessageView::max_body_line_length;
  if (text.size() <= limit) {
    out.emplace_back(text);
    return;
  }
  std::size_t offset = 0;
  while (text.size() - offset > 2 * limit) {
    std::size_t cut = std::string_view::npos;
    for (char at : std::string_view("\n> ")) {
      std::size_t index = text.find(at, offset + limit);
      if (index != std::string_view::npos && index - offset + 1 <= 2 * limit) {
        cut = index;
        break;
      }
    }
    if (cut == std::string_view::npos) cut = offset + limit;
    out.emplace_back(text.substr(offset, cut - offset + 1));
    offset = cut + 1;
  }
  if (offset < text.size()) out.emplace_back(text.substr(offset));
}

// The body after the header block, for a message GMime could not parse.
std::string bodyAfterHeader(std::string_view full) {
  std::size_t blank = full.find("\n\n");
  return blank == std::string_view::npos ? std::string() : std::string(full.substr(blank + 2));
}

}  // namespace

void MessageDecoder::decode(MessageView& view) {
  initialiseGMime();
  Walk state;
  GMimeRef<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(view.full_.data(), view.full_.size()));
  GMimeRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GMimeRef<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), nullptr));
  if (message) walk(g_mime_message_get_mime_part(message.get()), message.get(), 0, state);
  else state.leaves.push_back({"text/plain", {}, bodyAfterHeader(view.full_)});
  // The top node's fields in the order written, as the rest of the view reads them.
  if (!state.mime_parts.empty()) state.mime_parts.front() = view.headers_;
  view.mime_parts_ = std::move(state.mime_parts);
  view.truncated_ = state.truncated;

  UriList found_uris;
  std::string text;
  for (const Leaf& leaf : state.leaves) {
    if (!text.empty()) text += '\n';
    std::string rendered;
    if (leaf.type == "text/plain") {
      rendered = toUtf8(leaf.content, leaf.charset);
    } else if (leaf.type == "text/html") {
      HtmlText html = HtmlText::render(toUtf8(leaf.content, leaf.charset));
      rendered = std::move(html.text);
      for (const std::string& uri : html.uris) found_uris.add(uri);
    } else {
      continue;
    }
    text.append(rendered, 0, partScanLength(rendered, MessageView::body_part_scan_size, "\n "));
  }
  // Body rules see the Subject first (SpamAssassin prepends it), or an empty line without one.
  std::string subject = "\n";
  for (const MessageHeader& header : view.headers_) {
    if (equalsIgnoreCase(header.name, "subject")) subject = header.decoded + "\n";
  }
  appendShortLines(subject + collapseWhitespace(text), view.body_);

  for (const Leaf& leaf : state.leaves) {
    if (!(leaf.type.starts_with("text/") || leaf.type.starts_with("message/")) || leaf.type == "text/calendar") continue;
    std::string_view raw = leaf.content;
    appendShortParagraphs(raw.substr(0, partScanLength(raw, MessageView::rawbody_part_scan_size, "\n> ")), view.rawbody_);
  }

  for (const std::string& line : view.body_) UriExtractor::fromText(line, found_uris);
  if (found_uris.truncated()) view.truncated_ = true;
  std::unordered_set<std::string> seen;
  for (const std::string& uri : found_uris.uris()) {
    for (std::string& variant : UriExtractor::variants(uri)) {
      if (seen.insert(variant).second) view.uris_.push_back(std::move(variant));
    }
  }
}

}  // namespace mailgate::rules
