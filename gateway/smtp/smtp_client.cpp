#include "gateway/smtp/smtp_client.h"

#include <charconv>
#include <utility>

namespace mailgate {
namespace {

// RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39.
std::optional<int> replyCode(std::string_view line) {
  if (line.size() < 3) return std::nullopt;
  if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || line[2] < '0' || line[2] > '9')
    return std::nullopt;
  return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

// The text is relayed to our own client as it came, so a control character in it (a CR above
// all) must not pass; RFC 5321 §4.2 textstring allows HT and printable characters only.
bool isCleanText(std::string_view text) {
  for (unsigned char c : text)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

bool keywordIs(std::string_view line, std::string_view keyword) {
  return asciiLower(line.substr(0, line.find(' '))) == asciiLower(keyword);
}

}  // namespace

bool SmtpClient::permits(Command command, int code) {
  if (code == 421) return true;  // §3.8: the server is closing, whatever it was asked
  bool error = code >= 400 && code <= 559;
  switch (command) {
    case Command::Greeting: return code == 220 || error;  // S: 220, E: 554
    case Command::Ehlo:
    case Command::Helo:
    case Command::Mail:
    case Command::EndOfData: return code == 250 || error;
    case Command::Rcpt: return code == 250 || code == 251 || error;
    case Command::Data: return code == 354 || error;  // I: 354; any other 3xx or a 2xx is no answer
    case Command::StartTls: return code == 220 || error;  // RFC 3207 §4: 220, 454, 501
    case Command::Rset: return code == 250;
    case Command::Quit: return code == 221;
  }
  return false;
}

std::string_view SmtpClient::name(Command command) {
  switch (command) {
    case Command::Greeting: return "greeting";
    case Command::Ehlo: return "EHLO";
    case Command::Helo: return "HELO";
    case Command::StartTls: return "STARTTLS";
    case Command::Mail: return "MAIL";
    case Command::Rcpt: return "RCPT";
    case Command::Data: return "DATA";
    case Command::EndOfData: return "end of data";
    case Command::Rset: return "RSET";
    case Command::Quit: return "QUIT";
  }
  return "command";
}

void SmtpClient::expectGreeting() { expect(Command::Greeting); }

void SmtpClient::ehlo(std::string_view name) {
  output_.append("EHLO ").append(name).append("\r\n");
  expect(Command::Ehlo);
}

void SmtpClient::helo(std::string_view name) {
  output_.append("HELO ").append(name).append("\r\n");
  expect(Command::Helo);
}

void SmtpClient::startTls() {
  output_.append("STARTTLS\r\n");
  expect(Command::StartTls);
}

void SmtpClient::tlsStarted() {
  input_.clear();
  lines_.clear();
  ready_.clear();
  learnExtensions(Reply());
}

void SmtpClient::mail(const Path& sender, std::optional<uint64_t> size, BodyType body) {
  output_.append("MAIL FROM:").append(sender.bracketed());
  // RFC 1870 §6 and RFC 6152 §2: parameters only for extensions the server advertised.
  if (size && size_advertised_) output_.append(" SIZE=").append(std::to_string(*size));
  if (eight_bit_mime_ && body == BodyType::EightBitMime) output_.append(" BODY=8BITMIME");
  else if (eight_bit_mime_ && body == BodyType::SevenBit) output_.append(" BODY=7BIT");
  output_.append("\r\n");
  expect(Command::Mail);
}

void SmtpClient::rcpt(const Path& recipient) {
  output_.append("RCPT TO:").append(recipient.bracketed()).append("\r\n");
  expect(Command::Rcpt);
}

void SmtpClient::data() {
  output_.append("DATA\r\n");
  expect(Command::Data);
  at_line_start_ = true;
  last_was_cr_ = false;
  content_ended_with_crlf_ = true;
}

void SmtpClient::content(std::string_view bytes) {
  if (bytes.empty()) return;
  // The CR of a final CRLF may have come with the previous call.
  content_ended_with_crlf_ = bytes.ends_with("\r\n") || (bytes == "\n" && last_was_cr_);
  last_was_cr_ = bytes.back() == '\r';
  // RFC 5321 §4.5.2: a line that starts with '.' gets one more. A bare LF counts as a line end
  // here too: content should hold none, but a downstream that took one for a line end must
  // never see an unstuffed "." line (SMTP smuggling).
  while (!bytes.empty()) {
    if (at_line_start_ && bytes[0] == '.') output_.push_back('.');
    std::size_t lf = bytes.find('\n');
    std::size_t end = lf == std::string_view::npos ? bytes.size() : lf + 1;
    output_.append(bytes.substr(0, end));
    at_line_start_ = lf != std::string_view::npos;
    bytes.remove_prefix(end);
  }
}

void SmtpClient::endOfData() {
  // RFC 5321 §4.1.1.4: the terminating "." must start a line of its own.
  if (!content_ended_with_crlf_) output_.append("\r\n");
  output_.append(".\r\n");
  expect(Command::EndOfData);
  at_line_start_ = true;
  last_was_cr_ = false;
  content_ended_with_crlf_ = true;
}

void SmtpClient::rset() {
  output_.append("RSET\r\n");
  expect(Command::Rset);
}

void SmtpClient::quit() {
  output_.append("QUIT\r\n");
  expect(Command::Quit);
}

void SmtpClient::receive(std::string_view bytes) {
  if (failed_) return;
  input_.append(bytes);
  std::size_t start = 0;
  while (!failed_) {
    std::size_t lf = input_.find('\n', start);
    if (lf == std::string::npos) {
      // A partial line this long can only end as an overlong one.
      if (input_.size() - start >= max_reply_line_octets) fail("reply line too long");
      break;
    }
    if (lf + 1 - start > max_reply_line_octets) {
      fail("reply line too long");
      break;
    }
    // RFC 5321 §4.2 wants CRLF; a bare LF is tolerated as the line end, as most clients do.
    std::string_view line(input_.data() + start, lf - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    start = lf + 1;

    // RFC 5321 §4.2: "ddd-text" continues the reply, "ddd text" or "ddd" ends it.
    auto code = replyCode(line);
    bool last = line.size() == 3 || (line.size() > 3 && line[3] == ' ');
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    if (!code || !(last || line[3] == '-') || !isCleanText(text)) {
      fail("malformed reply line");
      break;
    }
    if (!lines_.empty() && *code != code_) {
      fail("reply lines with different codes");  // RFC 5321 §4.2.1: one code per reply
      break;
    }
    if (lines_.size() == max_reply_lines) {
      fail("reply has too many lines");
      break;
    }
    code_ = *code;
    lines_.emplace_back(text);
    if (!last) continue;
    if (expected_.empty()) {
      fail("unexpected reply " + std::to_string(code_));
      break;
    }
    Command command = expected_.front();
    expected_.pop_front();
    Reply reply = Reply::received(code_, std::exchange(lines_, {}));
    bool permitted = permits(command, code_);
    if (command == Command::Ehlo) learnExtensions(permitted ? reply : Reply());
    if (command == Command::Helo) learnExtensions(Reply());  // HELO: no extensions at all
    ready_.push_back(Response{command, std::move(reply), permitted});
  }
  if (failed_) return;
  input_.erase(0, start);
}

std::optional<SmtpClient::Response> SmtpClient::next() {
  if (failed_ || ready_.empty()) return std::nullopt;
  Response response = std::move(ready_.front());
  ready_.pop_front();
  return response;
}

std::string SmtpClient::takeOutput() {
  std::string output = std::move(output_);
  output_.clear();
  return output;
}

void SmtpClient::expect(Command command) { expected_.push_back(command); }

void SmtpClient::fail(std::string why) {
  if (failed_) return;
  failed_ = true;
  failure_ = std::move(why);
  input_.clear();
  lines_.clear();
  ready_.clear();
}

void SmtpClient::learnExtensions(const Reply& ehlo_reply) {
  // Only the last greeting counts: a HELO or a refused EHLO leaves no extensions.
  pipelining_ = false;
  starttls_ = false;
  eight_bit_mime_ = false;
  size_advertised_ = false;
  max_size_.reset();
  if (ehlo_reply.code() / 100 != 2) return;
  const auto& lines = ehlo_reply.lines();
  // RFC 5321 §4.1.1.1: the first line is the server's name; each further line is one keyword.
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (keywordIs(line, "PIPELINING")) {  // RFC 2920
      pipelining_ = true;
    } else if (keywordIs(line, "STARTTLS")) {  // RFC 3207
      starttls_ = true;
    } else if (keywordIs(line, "8BITMIME")) {  // RFC 6152
      eight_bit_mime_ = true;
    } else if (keywordIs(line, "SIZE")) {  // RFC 1870 §4: "SIZE" [SP 1*20DIGIT]; 0 means no limit
      size_advertised_ = true;
      std::size_t space = line.find(' ');
      std::string_view number = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
      uint64_t size = 0;
      auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), size);
      if (error == std::errc() && end == number.data() + number.size() && size > 0) max_size_ = size;
    }
  }
}

}  // namespace mailgate
