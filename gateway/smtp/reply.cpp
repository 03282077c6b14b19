#include "gateway/smtp/reply.h"

#include <cstdio>
#include <cstdlib>

namespace mailgate {
namespace {

bool validEnhanced(std::string_view enhanced, int code) {
  // RFC 3463 §2: class "." subject "." detail; class is 2, 4 or 5 and matches the reply class.
  if (enhanced.size() < 5 || enhanced[0] - '0' != code / 100 || enhanced[1] != '.') return false;
  int dots = 0;
  std::size_t digits = 0;
  for (std::size_t i = 2; i < enhanced.size(); ++i) {
    char c = enhanced[i];
    if (c == '.') {
      if (digits == 0 || digits > 3) return false;
      ++dots;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      ++digits;
    } else {
      return false;
    }
  }
  return dots == 1 && digits >= 1 && digits <= 3;
}

}  // namespace

std::expected<Reply, std::string> Reply::make(int code, std::string_view enhanced,
                                              std::string_view text) {
  if (code < 200 || code > 559) return std::unexpected("reply code " + std::to_string(code) + " is not 2xx-5xx");
  if (!enhanced.empty() && !validEnhanced(enhanced, code))
    return std::unexpected("enhanced status code '" + std::string(enhanced) +
                           "' does not match reply code " + std::to_string(code));
  Reply reply;
  reply.code_ = code;
  reply.enhanced_ = std::string(enhanced);
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, end == std::string_view::npos ? text.npos : end - start);
    for (unsigned char c : line)
      if (c < 0x20 || c == 0x7f) return std::unexpected("reply text contains a control character");
    // code SP enhanced SP text CRLF
    if (4 + (enhanced.empty() ? 0 : enhanced.size() + 1) + line.size() + 2 > max_line_octets)
      return std::unexpected("reply line is longer than 512 octets");
    reply.lines_.emplace_back(line);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return reply;
}

Reply Reply::of(int code, std::string_view enhanced, std::string_view text) {
  auto reply = make(code, enhanced, text);
  if (!reply) {
    std::fprintf(stderr, "mailgate: bad built-in reply %d %.*s: %s\n", code,
                 static_cast<int>(text.size()), text.data(), reply.error().c_str());
    std::abort();
  }
  return std::move(*reply);
}

Reply Reply::received(int code, std::vector<std::string> lines) {
  Reply reply;
  reply.code_ = code;
  if (lines.empty()) lines.emplace_back();
  // Keep a leading enhanced code apart so it is not repeated when the reply is relayed.
  auto first_space = lines[0].find(' ');
  std::string_view head = std::string_view(lines[0]).substr(0, first_space);
  if (validEnhanced(head, code)) {
    reply.enhanced_ = std::string(head);
    for (auto& line : lines) {
      if (line.starts_with(reply.enhanced_ + " ")) line.erase(0, reply.enhanced_.size() + 1);
      else if (line == reply.enhanced_) line.clear();
    }
  }
  reply.lines_ = std::move(lines);
  return reply;
}

std::string Reply::text() const {
  std::string out;
  for (const auto& line : lines_) {
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out;
}

std::string Reply::wire() const {
  std::string out;
  char code[4];
  std::snprintf(code, sizeof code, "%03d", code_);
  for (std::size_t i = 0; i < lines_.size(); ++i) {
    out += code;
    out += i + 1 < lines_.size() ? '-' : ' ';
    if (!enhanced_.empty()) {
      out += enhanced_;
      if (!lines_[i].empty()) out += ' ';
    }
    out += lines_[i];
    out += "\r\n";
  }
  return out;
}

std::string Reply::summary() const {
  std::string out = std::to_string(code_);
  if (!enhanced_.empty()) out += " " + enhanced_;
  if (!lines_.empty() && !lines_[0].empty()) out += " " + lines_[0];
  return out;
}

}  // namespace mailgate
