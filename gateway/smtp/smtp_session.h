#pragma once
// The server side of SMTP as a sans-I/O state machine (RFC 5321, with RFC 1870 SIZE, RFC 2920
// PIPELINING, RFC 6152 8BITMIME, RFC 2034 ENHANCEDSTATUSCODES). Bytes go in through receive();
// next() parses as far as it can and returns the next event for the host; replies accumulate in
// the output. Commands that need a decision of policy (HELO, MAIL, RCPT, end of data) stop the
// machine until the host calls answer(): a pipelined group is therefore answered in order, one
// decision at a time. Everything the protocol alone decides (syntax, sequence, limits, DATA
// framing) is answered here.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "gateway/smtp/address.h"
#include "gateway/smtp/reply.h"

namespace mailgate {

struct SessionSettings {
  std::string hostname = "localhost";
  uint32_t max_recipients = 100;
  // The size limit advertised with SIZE and enforced while DATA arrives; 0: none advertised.
  uint64_t max_message_bytes = 0;
  // Protocol errors (500/501/503/555) after which the client is cut off with 421 4.7.0, so a
  // confused or hostile client cannot keep a connection slot forever (Postfix:
  // smtpd_hard_error_limit).
  uint32_t max_protocol_errors = 20;
};

namespace session_event {
// The host must call answer() for Helo, Mail, Rcpt and EndOfData.
struct Helo { std::string name; bool extended; };
struct Mail { MailCommand command; };
struct Rcpt { RcptCommand command; };
// Message content after dot-unstuffing, CRLF line ends kept. Valid until the next call to next().
struct DataChunk { std::string_view bytes; };
struct EndOfData { uint64_t size; };
// The message was refused by the protocol (bare LF/CR, line too long, over the size limit); the
// reply is already in the output and the transaction is over.
struct DataRefused { Reply reply; std::string reason; uint64_t size; };
// The transaction in progress (if any) was abandoned: RSET, or HELO/EHLO again.
struct Reset {};
// A command refused by the protocol alone; the reply is already in the output. For the log:
// `verb` upper-cased ("" for a line too long), `argument` as sent (bounded by the line limit).
struct Refused { std::string verb; std::string argument; Reply reply; };
struct Quit {};
// Nothing more to do until more bytes arrive (the host should flush the output now).
struct NeedInput {};
// Waiting for answer() to a Helo, Mail, Rcpt or EndOfData event.
struct AwaitingAnswer {};
// The session is over (QUIT answered, or a 421 sent); flush the output, then close.
struct Closed {};
}  // namespace session_event

using SessionEvent =
    std::variant<session_event::NeedInput, session_event::AwaitingAnswer, session_event::Closed,
                 session_event::Helo, session_event::Mail, session_event::Rcpt,
                 session_event::DataChunk, session_event::EndOfData, session_event::DataRefused,
                 session_event::Reset, session_event::Refused, session_event::Quit>;

class SmtpSession {
 public:
  // RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including the CRLF; §4.5.3.1.4
  // allows 512 for commands, but real clients send longer MAIL lines with parameters, so the
  // gateway holds every line to the larger bound.
  static constexpr std::size_t max_line_octets = 1000;

  // What the session takes after HELO/EHLO (RFC 5321 §4.1.1.1: the client's domain or address
  // literal, read loosely as clients really send it): printable ASCII without spaces, in one line.
  static bool acceptsHeloArgument(std::string_view argument);

  explicit SmtpSession(SessionSettings settings);

  // The opening reply: 220 to serve, or a 421 (too many connections, shutting down) to close.
  void greet(const Reply& reply);
  void receive(std::string_view bytes);
  SessionEvent next();
  void answer(const Reply& reply);
  // Ends the session at once with `reply` (a 421: timeout, shutdown, error).
  void close(const Reply& reply);

  std::string takeOutput();
  bool hasOutput() const { return !output_.empty(); }
  std::size_t bufferedInput() const { return input_.size() - consumed_; }
  // Complete lines read so far (commands and DATA lines): progress, for the host's line timer.
  uint64_t linesRead() const { return lines_read_; }
  bool closed() const { return state_ == State::Closed; }
  bool inTransaction() const { return state_ == State::Mail || state_ == State::Data; }
  bool inData() const { return state_ == State::Data; }
  const SessionSettings& settings() const { return settings_; }
  void setSettings(SessionSettings settings) { settings_ = std::move(settings); }

 private:
  enum class State { Connected, Greeted, Mail, Data, Closed };
  enum class Pending { None, Helo, Mail, Rcpt, EndOfData };
  enum class Flaw { None, BareLineFeed, BareCarriageReturn, LineTooLong };

  // An event for the host, or nullopt when the command was answered here and parsing goes on.
  std::optional<SessionEvent> command(std::string_view line);
  SessionEvent dataLines();
  SessionEvent endOfData();
  SessionEvent refuse(std::string_view verb, std::string_view argument, const Reply& reply);
  void send(const Reply& reply);
  void resetTransaction();
  void compactInput();

  SessionSettings settings_;
  State state_ = State::Connected;
  Pending pending_ = Pending::None;
  std::string input_;
  std::size_t consumed_ = 0;
  std::string output_;
  std::string chunk_;  // unstuffed content handed out by the last DataChunk
  std::optional<session_event::Helo> deferred_helo_;
  bool discarding_long_line_ = false;
  bool discarded_cr_last_ = false;
  uint32_t protocol_errors_ = 0;
  uint64_t lines_read_ = 0;
  // Transaction state
  uint32_t recipients_tried_ = 0;
  uint32_t recipients_accepted_ = 0;
  // DATA framing state
  uint64_t data_size_ = 0;
  bool data_oversized_ = false;
  bool previous_line_ended_crlf_ = true;
  Flaw data_flaw_ = Flaw::None;
};

}  // namespace mailgate
