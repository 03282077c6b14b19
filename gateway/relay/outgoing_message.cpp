#include "gateway/relay/outgoing_message.h"

#include <algorithm>
#include <optional>

#include "gateway/smtp/address.h"

namespace mailgate {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\t'; }

// RFC 5322 §2.2.3: a field is unfolded (each CRLF before WSP taken out) before it is read.
std::string unfolded(std::string_view field) {
  std::string out;
  for (char c : field)
    if (c != '\r' && c != '\n') out += c;
  return out;
}

// RFC 2045 §5.1 token characters, and (RFC 6532 §3.2) octets of UTF-8 beyond ASCII.
bool isTokenChar(unsigned char c) {
  constexpr std::string_view tspecials = "()<>@,;:\\\"/[]?=";
  return c >= 0x80 || (c > 0x20 && c < 0x7f && tspecials.find(static_cast<char>(c)) == std::string_view::npos);
}

// RFC 5322 §3.2.2 CFWS from `at`: blanks and comments, which nest and may hold quoted-pairs.
// False when a comment does not end.
bool skipCfws(std::string_view value, std::size_t& at) {
  while (at < value.size()) {
    if (isSpace(value[at])) {
      ++at;
    } else if (value[at] == '(') {
      int depth = 0;
      for (; at < value.size(); ++at) {
        if (value[at] == '\\') ++at;
        else if (value[at] == '(') ++depth;
        else if (value[at] == ')' && --depth == 0) break;
      }
      if (at >= value.size()) return false;
      ++at;
    } else {
      break;
    }
  }
  return true;
}

std::string_view withoutFinalDot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

// RFC 8601 §5: a field claiming our authserv-id did not come from us. One whose authserv-id
// cannot be read is dropped too: a lenient reader might read ours in it.
bool claimsAuthservId(std::string_view field, std::string_view authserv_id) {
  std::string text = unfolded(field);
  auto name = headerFieldName(text);
  if (!name || !equalsIgnoreCase(*name, "Authentication-Results")) return false;
  auto id = authservIdOf(std::string_view(text).substr(text.find(':') + 1));
  // A DNS name with a final dot is the same name (RFC 1034 §3.1).
  return !id || equalsIgnoreCase(withoutFinalDot(*id), withoutFinalDot(authserv_id));
}

bool namedOneOf(std::string_view field, const std::vector<std::string>& names) {
  auto name = headerFieldName(unfolded(field));
  return name && std::any_of(names.begin(), names.end(), [&](const std::string& wanted) {
    if (!wanted.empty() && wanted.back() == '*') {
      std::string_view prefix = std::string_view(wanted).substr(0, wanted.size() - 1);
      return name->size() >= prefix.size() && equalsIgnoreCase(name->substr(0, prefix.size()), prefix);
    }
    return equalsIgnoreCase(*name, wanted);
  });
}

}  // namespace

std::optional<std::string> headerFieldName(std::string_view field) {
  std::size_t colon = field.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view name = field.substr(0, colon);
  while (!name.empty() && isSpace(name.back())) name.remove_suffix(1);  // obs-optional
  // RFC 5322 §3.6.8 ftext: printable ASCII but the colon.
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](unsigned char c) { return c >= 33 && c <= 126; }))
    return std::nullopt;
  return std::string(name);
}

std::optional<std::string> authservIdOf(std::string_view value) {
  std::string id;
  std::size_t at = 0;
  if (!skipCfws(value, at)) return std::nullopt;
  if (at < value.size() && value[at] == '"') {  // RFC 5322 §3.2.4 quoted-string: its content
    for (++at; at < value.size() && value[at] != '"'; ++at) {
      if (value[at] == '\\' && ++at == value.size()) return std::nullopt;
      id += value[at];
    }
    if (at == value.size()) return std::nullopt;
  } else {
    for (; at < value.size() && isTokenChar(static_cast<unsigned char>(value[at])); ++at) id += value[at];
  }
  if (id.empty()) return std::nullopt;
  return id;
}

std::string authenticationResultsValue(std::string_view authserv_id, const std::vector<std::string>& results) {
  std::string value = std::string(authserv_id) + ";";
  if (results.empty()) return value + " none";
  for (std::size_t i = 0; i < results.size(); ++i) {
    value += "\r\n\t" + results[i];
    if (i + 1 < results.size()) value += ";";
  }
  return value;
}

std::string authenticationResultsHeader(std::string_view authserv_id, const std::vector<std::string>& results) {
  return "Authentication-Results: " + authenticationResultsValue(authserv_id, results) + "\r\n";
}

std::expected<std::vector<ByteRange>, std::string> omittedHeaderFields(const Spool& content, std::string_view authserv_id,
                                                                       const std::vector<std::string>& replaced_names) {
  auto read = content.readPrefix(max_header_scan_octets, true);
  if (!read) return std::unexpected(read.error());
  const std::string& header = *read;
  std::vector<ByteRange> ranges;
  std::size_t field_start = 0;
  std::size_t at = 0;
  auto closeField = [&](std::size_t field_end) {
    if (field_end <= field_start) return;
    std::string_view field = std::string_view(header).substr(field_start, field_end - field_start);
    if (claimsAuthservId(field, authserv_id) || namedOneOf(field, replaced_names)) ranges.push_back({field_start, field_end});
  };
  while (at < header.size()) {
    std::size_t lf = header.find('\n', at);
    if (lf == std::string::npos) break;  // the header goes on past the scan limit: stop there
    std::size_t next = lf + 1;
    bool empty_line = lf == at || (lf == at + 1 && header[at] == '\r');
    if (empty_line) {
      closeField(at);
      return ranges;
    }
    if (!isSpace(header[at])) {  // a new field starts here; the previous one ended
      closeField(at);
      field_start = at;
    }
    at = next;
  }
  // No empty line: the whole message is header (RFC 5322 allows no body); close the last field
  // only if it ended within what was scanned.
  if (header.size() == content.size()) closeField(at);
  return ranges;
}

OutgoingMessage::OutgoingMessage(std::string added_headers, std::shared_ptr<const Spool> content,
                                 std::vector<ByteRange> omitted)
    : added_headers_(std::move(added_headers)), content_(std::move(content)), omitted_(std::move(omitted)) {}

uint64_t OutgoingMessage::size() const {
  uint64_t size = added_headers_.size() + content_->size();
  for (const auto& range : omitted_) size -= range.end - range.begin;
  return size;
}

std::expected<std::size_t, std::string> OutgoingMessage::read(uint64_t offset, char* buffer, std::size_t length) const {
  std::size_t copied = 0;
  if (offset < added_headers_.size()) {
    copied = std::min<std::size_t>(length, added_headers_.size() - offset);
    std::copy_n(added_headers_.data() + offset, copied, buffer);
    offset = added_headers_.size();
  }
  // Map the remaining outgoing offset to a content offset, skipping omitted ranges.
  uint64_t content_offset = offset - added_headers_.size();
  for (const auto& range : omitted_) {
    if (content_offset >= range.begin) content_offset += range.end - range.begin;
  }
  while (copied < length && content_offset < content_->size()) {
    uint64_t stop = content_->size();
    for (const auto& range : omitted_) {
      if (range.begin >= content_offset) {
        if (range.begin == content_offset) {
          content_offset = range.end;
          stop = 0;
        } else {
          stop = std::min(stop, range.begin);
        }
        break;
      }
    }
    if (stop == 0) continue;
    std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(length - copied, stop - content_offset));
    auto count = content_->read(content_offset, buffer + copied, want);
    if (!count) return std::unexpected(count.error());
    if (*count == 0) break;
    copied += *count;
    content_offset += *count;
  }
  return copied;
}

}  // namespace mailgate
