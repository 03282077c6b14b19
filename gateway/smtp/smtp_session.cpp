#include "gateway/smtp/smtp_session.h"

#include <cstring>

namespace mailgate {
namespace {

namespace ev = session_event;

std::string_view trimRight(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool verbIs(std::string_view verb, std::string_view name) {
  if (verb.size() != name.size()) return false;
  for (std::size_t i = 0; i < verb.size(); ++i) {
    char c = verb[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != name[i]) return false;
  }
  return true;
}

const Reply& badSequence(std::string_view why) {
  static const Reply need_helo = Reply::of(503, "5.5.1", "Error: send HELO/EHLO first");
  static const Reply need_mail = Reply::of(503, "5.5.1", "Error: need MAIL command");
  static const Reply need_rcpt = Reply::of(503, "5.5.1", "Error: need RCPT command");
  static const Reply nested = Reply::of(503, "5.5.1", "Error: nested MAIL command");
  if (why == "helo") return need_helo;
  if (why == "mail") return need_mail;
  if (why == "rcpt") return need_rcpt;
  return nested;
}

}  // namespace

bool SmtpSession::acceptsHeloArgument(std::string_view argument) {
  // RFC 5321 §4.1.1.1: the argument is the client's domain or address literal; no spaces.
  bool printable = true;
  for (unsigned char c : argument) printable = printable && c > 0x20 && c < 0x7f;
  // A bare CR or other control byte here would reach headers (Received, Received-SPF).
  return !argument.empty() && printable && std::string_view("EHLO \r\n").size() + argument.size() <= max_line_octets;
}

SmtpSession::SmtpSession(SessionSettings settings) : settings_(std::move(settings)) {}

void SmtpSession::greet(const Reply& reply) {
  if (state_ == State::Closed) return;  // closed before the greeting (shutting down)
  send(reply);
  // Until the client says HELO/EHLO, MAIL is out of sequence (RFC 5321 §4.1.4).
  state_ = reply.code() == 220 ? State::Connected : State::Closed;
}

void SmtpSession::receive(std::string_view bytes) {
  if (state_ == State::Closed) return;
  input_.append(bytes);
}

void SmtpSession::send(const Reply& reply) { output_ += reply.wire(); }

std::string SmtpSession::takeOutput() {
  std::string out;
  out.swap(output_);
  return out;
}

void SmtpSession::close(const Reply& reply) {
  if (state_ == State::Closed) return;
  send(reply);
  state_ = State::Closed;
  pending_ = Pending::None;
}

void SmtpSession::resetTransaction() {
  recipients_tried_ = 0;
  recipients_accepted_ = 0;
  data_size_ = 0;
  data_oversized_ = false;
  data_flaw_ = Flaw::None;
  previous_line_ended_crlf_ = true;
}

void SmtpSession::compactInput() {
  // Erase consumed bytes only when they dominate, so a pipelined burst is not shifted per line.
  if (consumed_ > 0 && (consumed_ == input_.size() || consumed_ > 64 * 1024)) {
    input_.erase(0, consumed_);
    consumed_ = 0;
  }
}

SessionEvent SmtpSession::refuse(std::string_view verb, std::string_view argument, const Reply& reply) {
  send(reply);
  // Only syntax and sequence errors count: 452/554 refusals are policy, not a confused client.
  bool protocol_error = reply.code() >= 500 && reply.code() != 554;
  if (protocol_error && ++protocol_errors_ >= settings_.max_protocol_errors) {
    close(Reply::of(421, "4.7.0", settings_.hostname + " Error: too many errors"));
  }
  std::string upper(verb);
  for (char& c : upper)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return ev::Refused{std::move(upper), std::string(argument), reply};
}

SessionEvent SmtpSession::next() {
  chunk_.clear();
  // A loop, not recursion: a client may pipeline any number of NOOPs (each answered here with
  // no event), and each must not cost stack.
  while (true) {
    if (state_ == State::Closed) return ev::Closed{};
    if (pending_ != Pending::None) return ev::AwaitingAnswer{};
    if (deferred_helo_) {
      pending_ = Pending::Helo;
      ev::Helo helo = std::move(*deferred_helo_);
      deferred_helo_.reset();
      return helo;
    }
    compactInput();
    if (state_ == State::Data) return dataLines();

    std::string_view buffered = std::string_view(input_).substr(consumed_);
    std::size_t lf = buffered.find('\n');
    if (lf == std::string_view::npos) {
      // RFC 5321 §4.5.3.1.6: refuse the line once it is known to be too long, but keep reading
      // to its end so the rest of it is not taken for commands.
      if (buffered.size() >= max_line_octets) {
        discarding_long_line_ = true;
        consumed_ = input_.size();
      }
      return ev::NeedInput{};
    }
    std::string_view line = buffered.substr(0, lf);
    consumed_ += lf + 1;
    ++lines_read_;
    if (discarding_long_line_ || lf + 1 > max_line_octets) {
      discarding_long_line_ = false;
      return refuse("", "", Reply::of(500, "5.5.2", "Error: line too long"));
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto event = command(line)) return std::move(*event);
  }
}

std::optional<SessionEvent> SmtpSession::command(std::string_view line) {
  std::size_t space = line.find(' ');
  std::string_view verb = line.substr(0, space);
  std::string_view argument =
      space == std::string_view::npos ? std::string_view() : trimRight(line.substr(space + 1));

  if (verbIs(verb, "EHLO") || verbIs(verb, "HELO")) {
    bool extended = verbIs(verb, "EHLO");
    if (!acceptsHeloArgument(argument))
      return refuse(verb, argument, Reply::of(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname"));
    bool was_in_transaction = inTransaction();
    resetTransaction();
    state_ = State::Connected;
    ev::Helo helo{std::string(argument), extended};
    // RFC 5321 §4.1.4: a new HELO/EHLO abandons the transaction like RSET; the host hears of the
    // reset first and of the HELO on the next call.
    if (was_in_transaction) {
      deferred_helo_ = std::move(helo);
      return ev::Reset{};
    }
    pending_ = Pending::Helo;
    return helo;
  }
  if (verbIs(verb, "MAIL")) {
    if (state_ == State::Connected) return refuse(verb, argument, badSequence("helo"));
    if (state_ == State::Mail) return refuse(verb, argument, badSequence("nested"));
    auto parsed = parseMailCommand(argument);
    if (!parsed) return refuse(verb, argument, parsed.error());
    pending_ = Pending::Mail;
    return ev::Mail{std::move(*parsed)};
  }
  if (verbIs(verb, "RCPT")) {
    if (state_ != State::Mail) return refuse(verb, argument, badSequence("mail"));
    auto parsed = parseRcptCommand(argument);
    if (!parsed) return refuse(verb, argument, parsed.error());
    if (recipients_accepted_ >= settings_.max_recipients) {
      ++recipients_tried_;
      return refuse(verb, argument, Reply::of(452, "4.5.3", "Error: too many recipients"));
    }
    ++recipients_tried_;
    pending_ = Pending::Rcpt;
    return ev::Rcpt{std::move(*parsed)};
  }
  if (verbIs(verb, "DATA")) {
    if (!argument.empty()) return refuse(verb, argument, Reply::of(501, "5.5.4", "Syntax: DATA"));
    if (state_ != State::Mail) return refuse(verb, argument, badSequence("mail"));
    if (recipients_tried_ == 0) return refuse(verb, argument, badSequence("rcpt"));
    // RFC 2920 §3.1: DATA pipelined after recipients that were all refused gets 554.
    if (recipients_accepted_ == 0) return refuse(verb, argument, Reply::of(554, "5.5.1", "Error: no valid recipients"));
    send(Reply::of(354, "", "End data with <CR><LF>.<CR><LF>"));
    state_ = State::Data;
    data_size_ = 0;
    data_oversized_ = false;
    data_flaw_ = Flaw::None;
    previous_line_ended_crlf_ = true;
    return std::nullopt;
  }
  if (verbIs(verb, "RSET")) {
    if (!argument.empty()) return refuse(verb, argument, Reply::of(501, "5.5.4", "Syntax: RSET"));
    bool was_in_transaction = inTransaction();
    resetTransaction();
    if (state_ == State::Mail) state_ = State::Greeted;
    send(Reply::of(250, "2.0.0", "Ok"));
    if (was_in_transaction) return ev::Reset{};
    return std::nullopt;
  }
  if (verbIs(verb, "NOOP")) {
    send(Reply::of(250, "2.0.0", "Ok"));
    return std::nullopt;
  }
  if (verbIs(verb, "QUIT")) {
    send(Reply::of(221, "2.0.0", "Bye"));
    state_ = State::Closed;
    return ev::Quit{};
  }
  if (verbIs(verb, "VRFY")) {
    if (argument.empty()) return refuse(verb, argument, Reply::of(501, "5.5.4", "Syntax: VRFY address"));
    // RFC 5321 §3.5.3: 252 when the server will not verify but will accept mail for it.
    send(Reply::of(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"));
    return std::nullopt;
  }
  if (verbIs(verb, "HELP")) {
    send(Reply::of(214, "2.0.0",
                   "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\n"
                   "See RFC 5321"));
    return std::nullopt;
  }
  if (verbIs(verb, "EXPN") || verbIs(verb, "STARTTLS") || verbIs(verb, "AUTH") ||
      verbIs(verb, "ETRN") || verbIs(verb, "TURN") || verbIs(verb, "BDAT")) {
    return refuse(verb, argument, Reply::of(502, "5.5.1", "Error: command not implemented"));
  }
  return refuse(verb, argument, Reply::of(500, "5.5.2", "Error: command not recognized"));
}

SessionEvent SmtpSession::dataLines() {
  // Every complete line is judged whole: RFC 5321 §4.1.1.4 ends DATA only at CRLF "." CRLF, so a
  // "." line counts as the end only when the line before it ended in CRLF too. A line ending in a
  // bare LF, or holding a bare CR, marks the message as refused but never ends it: the
  // downstream must not see an end of data that the gateway did not see (SMTP smuggling).
  const char* data = input_.data();
  std::size_t end = input_.size();
  while (consumed_ < end) {
    const char* start = data + consumed_;
    std::size_t available = end - consumed_;
    const char* lf = static_cast<const char*>(std::memchr(start, '\n', available));
    if (lf == nullptr) {
      if (available >= max_line_octets) {
        // Too long already: drop what we have, keep dropping until its LF.
        discarding_long_line_ = true;
        data_flaw_ = data_flaw_ == Flaw::None ? Flaw::LineTooLong : data_flaw_;
        // Whether the line ends in CRLF may hang on this last byte, if its LF comes next.
        discarded_cr_last_ = data[end - 1] == '\r';
        consumed_ = end;
      }
      break;
    }
    std::size_t length = static_cast<std::size_t>(lf - start) + 1;
    std::string_view line(start, length);
    consumed_ += length;
    ++lines_read_;
    bool ends_crlf = length >= 2 ? line[length - 2] == '\r' : discarding_long_line_ && discarded_cr_last_;
    if (discarding_long_line_) {
      discarding_long_line_ = false;
      previous_line_ended_crlf_ = ends_crlf;
      continue;
    }
    if (line == ".\r\n" && previous_line_ended_crlf_) {
      // Hand out the content before it first; the terminator is read again on the next call.
      if (!chunk_.empty()) {
        consumed_ -= length;
        return ev::DataChunk{chunk_};
      }
      return endOfData();
    }
    previous_line_ended_crlf_ = ends_crlf;
    if (data_flaw_ == Flaw::None) {
      // Length first: a line whose first 1000 octets came alone is known too long before the rest
      // is seen (and dropped, above), so the same line must get the same refusal whole.
      std::size_t body_length = ends_crlf ? length - 2 : length - 1;
      if (length > max_line_octets) data_flaw_ = Flaw::LineTooLong;
      else if (!ends_crlf) data_flaw_ = Flaw::BareLineFeed;
      else if (std::memchr(start, '\r', body_length) != nullptr) data_flaw_ = Flaw::BareCarriageReturn;
    }
    // RFC 5321 §4.5.2: remove one leading dot.
    if (line[0] == '.') line.remove_prefix(1);
    data_size_ += line.size();
    if (settings_.max_message_bytes != 0 && data_size_ > settings_.max_message_bytes) data_oversized_ = true;
    // Content that will be refused anyway is not handed out: memory stays bounded.
    if (!data_oversized_ && data_flaw_ == Flaw::None) chunk_.append(line);
  }
  if (!chunk_.empty()) return ev::DataChunk{chunk_};
  return ev::NeedInput{};
}

SessionEvent SmtpSession::endOfData() {
  uint64_t size = data_size_;
  Flaw flaw = data_flaw_;
  bool oversized = data_oversized_;
  state_ = State::Greeted;
  resetTransaction();
  switch (flaw) {
    case Flaw::BareLineFeed:
    case Flaw::BareCarriageReturn: {
      Reply reply = Reply::of(550, "5.5.2", "Error: bare <LF> or <CR> received in message data (RFC 5321 2.3.8)");
      send(reply);
      return ev::DataRefused{reply, flaw == Flaw::BareLineFeed ? "bare LF in DATA" : "bare CR in DATA", size};
    }
    case Flaw::LineTooLong: {
      Reply reply = Reply::of(500, "5.5.2", "Error: line too long in message data");
      send(reply);
      return ev::DataRefused{reply, "line longer than 1000 octets in DATA", size};
    }
    case Flaw::None:
      break;
  }
  if (oversized) {
    Reply reply = Reply::of(552, "5.3.4", "Error: message size exceeds fixed maximum message size");
    send(reply);
    return ev::DataRefused{reply, "message size " + std::to_string(size) + " exceeds " +
                                      std::to_string(settings_.max_message_bytes), size};
  }
  pending_ = Pending::EndOfData;
  return ev::EndOfData{size};
}

void SmtpSession::answer(const Reply& reply) {
  if (state_ == State::Closed) return;
  switch (pending_) {
    case Pending::None:
      return;
    case Pending::Helo:
      if (reply.positive()) state_ = State::Greeted;
      break;
    case Pending::Mail:
      if (reply.positive()) state_ = State::Mail;
      break;
    case Pending::Rcpt:
      if (reply.positive()) ++recipients_accepted_;
      break;
    case Pending::EndOfData:
      break;
  }
  pending_ = Pending::None;
  send(reply);
  // 421 is the server closing the channel (RFC 5321 §3.8), whatever command it answers.
  if (reply.code() == 421) state_ = State::Closed;
}

}  // namespace mailgate
