#pragma once
// The downstream side of the relay as a sans-I/O state machine: it formats commands into bytes
// and parses the server's replies, pairing each reply with the command it answers. It never
// touches a socket or a clock; DownstreamConnection (gateway/relay/) moves its bytes.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/address.h"
#include "gateway/smtp/reply.h"

namespace mailgate {

class SmtpClient {
 public:
  enum class Command { Greeting, Ehlo, Helo, StartTls, Mail, Rcpt, Data, EndOfData, Rset, Quit };

  struct Response {
    Command command;
    Reply reply;
    // False when RFC 5321 §4.3.2 does not allow this code in reply to `command` (a 250 to DATA,
    // a 354 to RCPT): the server broke the protocol, and the reply means nothing it says.
    bool permitted = true;
  };

  // RFC 5321 §4.3.2's command-reply sequences, by class where the RFC lists codes of a class
  // (a client "MUST be prepared to deal with unrecognized reply codes by interpreting the first
  // digit only"), and 421 to any command (§3.8). RSET and QUIT allow their success code only.
  static bool permits(Command command, int code);
  // "RCPT", "end of data", ...: for log lines.
  static std::string_view name(Command command);

  // Limits on what the server may send, so a hostile or broken downstream cannot grow memory.
  static constexpr std::size_t max_reply_line_octets = 4096;
  static constexpr std::size_t max_reply_lines = 100;

  // Each call queues one command's bytes in the output and remembers that a reply is owed.
  // mail() adds SIZE= and BODY= only when the last EHLO reply advertised SIZE / 8BITMIME.
  void expectGreeting();
  void ehlo(std::string_view name);
  void helo(std::string_view name);
  // RFC 3207: once its 220 is in, the host runs the handshake and then calls tlsStarted().
  void startTls();
  // TLS is up: RFC 3207 §4.2, forget what the server said before (its extensions, and any bytes
  // it sent after the 220 in the clear: a reply injected there must not answer a later command).
  void tlsStarted();
  void mail(const Path& sender, std::optional<uint64_t> size, BodyType body);
  void rcpt(const Path& recipient);
  void data();
  // Message content after the 354: plain message bytes with CRLF line ends; dot-stuffed here
  // (RFC 5321 §4.5.2), with the line state carried across calls.
  void content(std::string_view bytes);
  // Ends the content: CRLF first if the content did not end with one, then ".\r\n".
  void endOfData();
  void rset();
  void quit();

  // Feeds bytes read from the server.
  void receive(std::string_view bytes);
  // The next completed reply, in command order, or nullopt when more bytes are needed.
  std::optional<Response> next();
  // True when the server sent something that is not an SMTP reply (or a reply nobody asked
  // for, or past the limits above): the connection must be dropped.
  bool failed() const { return failed_; }
  const std::string& failure() const { return failure_; }

  std::string takeOutput();
  bool hasOutput() const { return !output_.empty(); }
  std::size_t outputSize() const { return output_.size(); }
  std::size_t pendingReplies() const { return expected_.size(); }

  // What the last EHLO reply advertised.
  bool pipelining() const { return pipelining_; }
  bool startTlsOffered() const { return starttls_; }
  bool eightBitMime() const { return eight_bit_mime_; }
  std::optional<uint64_t> maxSize() const { return max_size_; }

 private:
  void expect(Command command);
  void fail(std::string why);
  void learnExtensions(const Reply& ehlo_reply);

  std::string output_;
  std::string input_;
  std::deque<Command> expected_;
  std::deque<Response> ready_;
  // Multi-line reply being assembled.
  std::vector<std::string> lines_;
  int code_ = 0;
  bool at_line_start_ = true;  // for dot-stuffing content
  bool last_was_cr_ = false;
  bool content_ended_with_crlf_ = true;
  bool pipelining_ = false;
  bool starttls_ = false;
  bool eight_bit_mime_ = false;
  bool size_advertised_ = false;
  std::optional<uint64_t> max_size_;
  bool failed_ = false;
  std::string failure_;
};

}  // namespace mailgate
