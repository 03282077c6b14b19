// libFuzzer target for SmtpClient, the downstream side of the relay (tests/fuzz/README.md). The
// input is a program, read with FuzzedDataProvider: each step one of the client's calls, with the
// arguments the gateway can give it (names from a fixed list of valid ones, paths the address
// parser accepted, any message content), or bytes from the downstream server. Findings, besides
// crashes and sanitizer reports:
//  - a reply handed out for a command that was not sent, or for another command than the oldest
//    one still owed; replies handed out after the client failed; a reply whose code or text could
//    not be relayed as it is (code 200-559, no control character but HT in its lines);
//  - a command's bytes other than the command asked for (one line, CRLF, at most 512 octets, SIZE=
//    and BODY= only as asked and advertised);
//  - message content that a server reading CRLF "." CRLF would end early or read differently, or
//    that a server taking a bare LF for a line end would end early (SMTP smuggling).

#include <fuzzer/FuzzedDataProvider.h>

#include <deque>
#include <string>

#include "gateway/smtp/smtp_client.h"
#include "tests/fuzz/fuzz_support.h"

namespace mailgate {
namespace {

using fuzz::require;
using Command = SmtpClient::Command;

constexpr const char* helo_names[] = {"mx.test", "gateway.example.org", "[192.0.2.1]", "[IPv6:2001:db8::1]", "a"};

// The message a server reads from a DATA section (after the DATA line up to and including the
// terminator) that ends in CRLF "." CRLF: each line's leading dot removed (RFC 5321 §4.5.2).
// Lines end at every LF, as the client stuffs after a bare LF too.
std::string unstuffed(std::string_view section) {
  std::string content;
  while (!section.empty()) {
    std::size_t lf = section.find('\n');
    std::string_view line = section.substr(0, lf == std::string_view::npos ? section.size() : lf + 1);
    section.remove_prefix(line.size());
    if (line.starts_with('.')) line.remove_prefix(1);
    content += line;
  }
  return content;
}

class Driver {
 public:
  void command(Command command, std::string_view expected_line) {
    require(!in_data_, "harness: a command in DATA");
    std::string out = client_.takeOutput();
    require(out == expected_line, "command bytes differ from the command asked", out);
    require(out.size() <= 512, "command line over 512 octets", out);
    sent_.push_back(command);
  }

  void ehlo(bool extended, std::string_view name) {
    if (extended) client_.ehlo(name);
    else client_.helo(name);
    command(extended ? Command::Ehlo : Command::Helo, std::string(extended ? "EHLO " : "HELO ") + std::string(name) + "\r\n");
  }

  void mail(const MailCommand& parsed, std::optional<uint64_t> size) {
    bool eight_bit = client_.eightBitMime();
    bool advertised_size = client_.maxSize().has_value();
    client_.mail(parsed.path, size, parsed.body);
    std::string out = client_.takeOutput();
    std::string_view line = out;
    std::string head = "MAIL FROM:" + parsed.path.bracketed();
    require(line.starts_with(head) && line.ends_with("\r\n"), "MAIL line malformed", out);
    line = line.substr(head.size(), line.size() - head.size() - 2);
    std::string size_parameter = size ? " SIZE=" + std::to_string(*size) : "";
    // SIZE= goes out when the last EHLO reply advertised SIZE, which maxSize() shows when it had a number.
    if (!size_parameter.empty() && advertised_size) require(line.starts_with(size_parameter), "SIZE= missing", out);
    if (!size_parameter.empty() && line.starts_with(size_parameter)) line.remove_prefix(size_parameter.size());
    if (eight_bit && parsed.body == BodyType::EightBitMime) require(line == " BODY=8BITMIME", "BODY=8BITMIME missing", out);
    else if (eight_bit && parsed.body == BodyType::SevenBit) require(line == " BODY=7BIT", "BODY=7BIT missing", out);
    else require(line.empty(), "MAIL parameter not asked for or not advertised", out);
    require(out.size() <= 512, "MAIL line over 512 octets", out);
    sent_.push_back(Command::Mail);
  }

  void rcpt(const RcptCommand& parsed) {
    client_.rcpt(parsed.path);
    command(Command::Rcpt, "RCPT TO:" + parsed.path.bracketed() + "\r\n");
  }

  void data() {
    client_.data();
    command(Command::Data, "DATA\r\n");
    in_data_ = true;
    content_.clear();
    section_.clear();
  }

  void content(std::string_view bytes) {
    if (!in_data_) return;
    client_.content(bytes);
    content_ += bytes;
    section_ += client_.takeOutput();
  }

  void endOfData() {
    if (!in_data_) return;
    client_.endOfData();
    section_ += client_.takeOutput();
    in_data_ = false;
    sent_.push_back(Command::EndOfData);
    // A strict server: the section is read up to the first CRLF "." CRLF (the DATA line ended
    // with CRLF), which must be its end.
    std::string framed = "\r\n" + section_;
    require(framed.find("\r\n.\r\n") + 5 == framed.size(), "content ends DATA early (CRLF.CRLF inside)", section_);
    // A lenient server, taking a bare LF for a line end: no "." line but the last.
    std::size_t at = 0;
    while (at < section_.size()) {
      std::size_t lf = section_.find('\n', at);
      std::size_t end = lf == std::string::npos ? section_.size() : lf + 1;
      std::string_view line = std::string_view(section_).substr(at, end - at);
      if (end < section_.size()) require(line != ".\n" && line != ".\r\n", "content ends DATA early for a bare-LF reader", section_);
      at = end;
    }
    std::string expected = content_;
    if (!content_.empty() && !content_.ends_with("\r\n")) expected += "\r\n";
    std::string read = unstuffed(std::string_view(section_).substr(0, section_.size() - 3));
    require(read == expected, "content read back differs from the content sent", section_);
  }

  void simple(Command command) {
    switch (command) {
      case Command::Greeting: client_.expectGreeting(); this->command(command, ""); break;
      case Command::Rset: client_.rset(); this->command(command, "RSET\r\n"); break;
      case Command::Quit: client_.quit(); this->command(command, "QUIT\r\n"); break;
      default: break;
    }
  }

  void receive(std::string_view bytes) {
    bool failed_before = client_.failed();
    client_.receive(bytes);
    if (failed_before) require(client_.failed(), "recovered from a failure");
    while (auto response = client_.next()) {
      require(!client_.failed(), "a reply handed out after the client failed");
      require(!sent_.empty(), "a reply for a command that was not sent");
      require(response->command == sent_.front(), "a reply paired with the wrong command");
      sent_.pop_front();
      const Reply& reply = response->reply;
      require(reply.code() >= 200 && reply.code() <= 559 && (reply.code() / 10) % 10 <= 5, "reply code out of range");
      require(!reply.lines().empty(), "a reply without lines");
      for (const std::string& line : reply.lines())
        for (unsigned char c : line) require((c >= 0x20 && c != 0x7f) || c == '\t', "control character in a reply's text", line);
      fuzz::wireReplies(reply.wire(), SmtpClient::max_reply_line_octets + 16);
    }
    if (client_.failed()) {
      require(!client_.failure().empty(), "failed without saying why");
      require(!client_.next(), "a reply after the failure");
    } else {
      require(client_.pendingReplies() == sent_.size(), "replies owed differ from commands sent");
    }
  }

  bool inData() const { return in_data_; }

 private:
  SmtpClient client_;
  std::deque<Command> sent_;  // commands whose replies have not been handed out
  bool in_data_ = false;
  std::string content_;  // what content() was given since DATA
  std::string section_;  // what the client wrote for it
};

}  // namespace
}  // namespace mailgate

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate;
  FuzzedDataProvider provider(data, size);
  Driver driver;
  int steps = 0;
  while (provider.remaining_bytes() > 0 && ++steps < 200) {
    switch (provider.ConsumeIntegralInRange(0, 11)) {
      case 0: if (!driver.inData()) driver.simple(Command::Greeting); break;
      case 1:
      case 2: {
        if (driver.inData()) break;
        const char* name = helo_names[provider.ConsumeIntegralInRange<std::size_t>(0, std::size(helo_names) - 1)];
        driver.ehlo(provider.ConsumeBool(), name);
        break;
      }
      case 3: {
        if (driver.inData()) break;
        auto parsed = parseMailCommand("FROM:" + provider.ConsumeRandomLengthString(300));
        std::optional<uint64_t> message_size;
        if (provider.ConsumeBool()) message_size = provider.ConsumeIntegral<uint64_t>();
        if (parsed) driver.mail(*parsed, message_size);
        break;
      }
      case 4: {
        if (driver.inData()) break;
        auto parsed = parseRcptCommand("TO:" + provider.ConsumeRandomLengthString(300));
        if (parsed) driver.rcpt(*parsed);
        break;
      }
      case 5: if (!driver.inData()) driver.data(); break;
      case 6:
      case 7: driver.content(provider.ConsumeRandomLengthString(2000)); break;
      case 8: driver.endOfData(); break;
      case 9: if (!driver.inData()) driver.simple(provider.ConsumeBool() ? Command::Rset : Command::Quit); break;
      default: driver.receive(provider.ConsumeRandomLengthString(1000)); break;
    }
  }
  return 0;
}
