#pragma once
// An SMTP reply (RFC 5321 §4.2) with its enhanced status code (RFC 3463). Every reply the gateway
// sends is built by Reply::make, which checks that the code, the enhanced code and the text agree
// and fit, so a bad reply from config or from a stage is refused where it is made, not on the wire.

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate {

class Reply {
 public:
  // RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including the code and CRLF.
  static constexpr std::size_t max_line_octets = 512;

  // `text` may hold several lines separated by '\n'; each becomes one reply line.
  // `enhanced` may be empty (for 220/221/354, where no enhanced code applies).
  static std::expected<Reply, std::string> make(int code, std::string_view enhanced,
                                                std::string_view text);
  // For the gateway's own constant replies: a bad one is a programming error and aborts.
  static Reply of(int code, std::string_view enhanced, std::string_view text);
  // A reply received from a peer (the downstream), kept as it came: only the code is required.
  static Reply received(int code, std::vector<std::string> lines);

  Reply() = default;

  int code() const { return code_; }
  const std::string& enhanced() const { return enhanced_; }
  const std::vector<std::string>& lines() const { return lines_; }
  std::string text() const;  // lines joined by "; " (for logs)

  bool positive() const { return code_ >= 200 && code_ < 400; }
  bool transient() const { return code_ >= 400 && code_ < 500; }
  bool permanent() const { return code_ >= 500; }

  std::string wire() const;     // "250-first\r\n250 last\r\n"
  std::string summary() const;  // "550 5.7.1 text" (first line) for logs

 private:
  int code_ = 0;
  std::string enhanced_;
  std::vector<std::string> lines_;  // text only, without code and enhanced code
};

}  // namespace mailgate
