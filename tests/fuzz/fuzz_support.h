#pragma once
// What the fuzz targets share: the finding (an invariant broken), and checks written here
// independently of the code under test, so that a bug there cannot hide itself.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::fuzz {

// A broken invariant is a finding like a crash: libFuzzer keeps the input that caused it.
[[noreturn]] inline void broken(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  if (!detail.empty()) {
    std::fprintf(stderr, "  detail (%zu octets): ", detail.size());
    for (unsigned char c : detail.substr(0, 600)) {
      if (c >= 0x20 && c < 0x7f && c != '\\') std::fputc(c, stderr);
      else std::fprintf(stderr, "\\x%02x", c);
    }
    std::fputc('\n', stderr);
  }
  std::abort();
}

inline void require(bool condition, std::string_view what, std::string_view detail = {}) {
  if (!condition) broken(what, detail);
}

inline uint64_t hashOf(std::string_view text, uint64_t seed = 0) {
  uint64_t hash = 1469598103934665603ull ^ seed;  // FNV-1a
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

// RFC 3629 §4: shortest form, no surrogates, nothing above U+10FFFF.
inline bool isUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) length = 2;
    else if (c == 0xe0) length = 3, low = 0xa0;
    else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) length = 3;
    else if (c == 0xed) length = 3, high = 0x9f;
    else if (c == 0xf0) length = 4, low = 0x90;
    else if (c >= 0xf1 && c <= 0xf3) length = 4;
    else if (c == 0xf4) length = 4, high = 0x8f;
    else return false;
    if (i + length > text.size()) return false;
    auto second = static_cast<unsigned char>(text[i + 1]);
    if (second < low || second > high) return false;
    for (std::size_t k = 2; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if (next < 0x80 || next > 0xbf) return false;
    }
    i += length;
  }
  return true;
}

// One reply as it went on the wire.
struct WireReply {
  int code = 0;
  std::vector<std::string> lines;  // text after "ddd-" / "ddd "
};

// Splits `output` into replies and checks RFC 5321 §4.2 and §4.5.3.1.5 on each line: a code of
// three digits (2-5, 0-5, 0-9), then '-' on every line but the last and ' ' (or nothing) on the
// last, the same code on every line of one reply, no control character but HT in the text, at most
// `max_line` octets with the CRLF, and CRLF at the end of each line, the last one included (the
// output never ends inside a reply).
inline std::vector<WireReply> wireReplies(std::string_view output, std::size_t max_line) {
  std::vector<WireReply> replies;
  bool in_reply = false;
  while (!output.empty()) {
    std::size_t lf = output.find('\n');
    require(lf != std::string_view::npos, "reply line without its line end", output);
    std::string_view line = output.substr(0, lf + 1);
    output.remove_prefix(lf + 1);
    require(line.size() >= 5 && line[line.size() - 2] == '\r', "reply line not ended by CRLF", line);
    require(line.size() <= max_line, "reply line too long", line);
    line.remove_suffix(2);
    bool digits = line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '5' && line[2] >= '0' && line[2] <= '9';
    require(digits, "reply line without a reply code", line);
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    bool last = line.size() == 3 || line[3] == ' ';
    require(last || line[3] == '-', "reply code not followed by ' ' or '-'", line);
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    for (unsigned char c : text) require((c >= 0x20 && c != 0x7f) || c == '\t', "control character in a reply", line);
    if (in_reply) require(code == replies.back().code, "reply lines with different codes", line);
    else replies.push_back({code, {}});
    replies.back().lines.emplace_back(text);
    in_reply = !last;
  }
  require(!in_reply, "output ends inside a multi-line reply");
  return replies;
}

}  // namespace mailgate::fuzz
