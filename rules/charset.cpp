#include "rules/charset.h"

#include <algorithm>
#include <cctype>

#include "gateway/c/gmime.h"
#include "gateway/util/ascii.h"

namespace mailgate::rules {
namespace {

bool isAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Header fields whose values hold no encoded words; SpamAssassin leaves them undecoded.
bool holdsNoEncodedWords(std::string_view name) {
  std::string lower = asciiLower(name);
  return lower == "received" || lower == "message-id" || lower == "resent-message-id" || lower == "date" ||
         lower == "resent-date" || lower == "mime-version" || lower == "references" || lower == "in-reply-to" ||
         lower.starts_with("list-");
}

std::string convert(std::string_view bytes, const char* charset) {
  GMimeRef<GMimeFilter> filter(g_mime_filter_charset_new(charset, "UTF-8"));
  if (!filter) return {};
  GMimeRef<GMimeStream> memory(g_mime_stream_mem_new());
  GMimeRef<GMimeStream> filtered(g_mime_stream_filter_new(memory.get()));
  g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), filter.get());
  g_mime_stream_write(filtered.get(), bytes.data(), bytes.size());
  g_mime_stream_flush(filtered.get());
  GByteArray* array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(memory.get()));
  return std::string(reinterpret_cast<const char*>(array->data), array->len);
}

}  // namespace

bool isValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    if (length == 2 && c < 0xc2) return false;  // overlong
    for (std::size_t k = 1; k < length; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return false;
    if (length == 3) {
      unsigned char next = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xe0 && next < 0xa0) || (c == 0xed && next >= 0xa0)) return false;  // overlong, surrogate
    }
    if (length == 4) {
      unsigned char next = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xf0 && next < 0x90) || c > 0xf4 || (c == 0xf4 && next >= 0x90)) return false;
    }
    i += length;
  }
  return true;
}

std::string toUtf8(std::string_view bytes, std::string_view charset) {
  initialiseGMime();
  if (isAscii(bytes)) return std::string(bytes);
  std::string name = asciiLower(charset);
  if (name.empty() || name == "us-ascii" || name == "ascii" || name == "utf-8" || name == "utf8") {
    if (isValidUtf8(bytes)) return std::string(bytes);
    name = "windows-1252";
  }
  std::string converted = convert(bytes, name.c_str());
  if (converted.empty() && !bytes.empty()) {
    if (isValidUtf8(bytes)) return std::string(bytes);
    converted = convert(bytes, "windows-1252");
  }
  return converted;
}

std::string decodeHeaderValue(std::string_view name, std::string_view raw) {
  initialiseGMime();
  // Unfold (a line break and the blanks after it become one space), drop line ends, trim.
  std::string value;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\r') continue;
    if (c == '\n') {
      if (i + 1 < raw.size() && (raw[i + 1] == ' ' || raw[i + 1] == '\t')) {
        while (i + 1 < raw.size() && (raw[i + 1] == ' ' || raw[i + 1] == '\t')) ++i;
        value += ' ';
      }
      continue;
    }
    value += c;
  }
  std::size_t begin = value.find_first_not_of(" \t\n\r\f\v");
  if (begin == std::string::npos) return {};
  value = value.substr(begin, value.find_last_not_of(" \t\n\r\f\v") - begin + 1);
  if (!holdsNoEncodedWords(name) && value.find("=?") != std::string::npos) {
    char* decoded = g_mime_utils_header_decode_text(nullptr, value.c_str());
    if (decoded != nullptr) {
      std::string result(decoded);
      g_free(decoded);
      return result;
    }
  }
  return toUtf8(value, "utf-8");
}

}  // namespace mailgate::rules
