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

}  // namespace

bool SmtpSession::acceptsHeloArgument(std::string_view argument) {
  // RFC 5321 §4.1.1.1: the argument is the client's domain or address literal; no spaces.
  bool printable = true;
  for (unsigned char c : argument) printable = printable && c > 0x20 && c < 0x7f;
  // A bare CR or other control byte here would reach headers (Received, Received-SPF).
  return !argument.empty() && printable && std::string_view("EHLO \r\n").size() + argument.size() <= max_line_octets;
}

SmtpSession::SmtpSession(SessionSettings settings) : settings_(std::move(settings)) {}

void SmtpSession::greet() {
  if (state_ == State::Closed) return;  // closed before the greeting (shutting down)
  send(replies::greeting(settings_.hostname));
  // Until the client says HELO/EHLO, MAIL is out of sequence (RFC 5321 §4.1.4).
  state_ = State::Connected;
}

void SmtpSession::greet(const Reply& refusal) {
  if (state_ == State::Closed) return;
  send(refusal);
  // RFC 5321 §3.1: after a 554 greeting the server waits for QUIT; a 421 closes now.
  state_ = refusal.code() == 554 ? State::RefusedAtGreeting : State::Closed;
}

void SmtpSession::receive(std::string_view bytes) {
  // Bytes that arrive between the 220 to STARTTLS and the handshake were sent in the clear
  // after the command: never read as commands (CVE-2011-0411).
  if (state_ == State::Closed || state_ == State::StartingTls) return;
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
  // Only syntax and sequence errors count (500-503, 555): 452/552/554 refusals are policy, not a
  // confused client.
  bool protocol_error = (reply.code() >= 500 && reply.code() <= 503) || reply.code() == 555;
  if (protocol_error && ++protocol_errors_ >= settings_.max_protocol_errors) {
    close(replies::tooManyErrors(settings_.hostname));
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
    if (state_ == State::StartingTls) return ev::NeedInput{};
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
      return refuse("", "", replies::lineTooLong());
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto event = command(line)) return std::move(*event);
  }
}

// One row per command (OpenSMTPD's smtp_session.c keeps the same shape): each handler checks
// the command's syntax and sequence and answers it, or hands the host an event.
const SmtpSession::CommandRow SmtpSession::command_table[] = {
    {"EHLO", &SmtpSession::onHelo},  {"HELO", &SmtpSession::onHelo},
    {"MAIL", &SmtpSession::onMail},  {"RCPT", &SmtpSession::onRcpt},
    {"DATA", &SmtpSession::onData},  {"RSET", &SmtpSession::onRset},
    {"NOOP", &SmtpSession::onNoop},  {"QUIT", &SmtpSession::onQuit},
    {"VRFY", &SmtpSession::onVrfy},  {"HELP", &SmtpSession::onHelp},
    {"EXPN", &SmtpSession::onNotImplemented}, {"STARTTLS", &SmtpSession::onStartTls},
    {"AUTH", &SmtpSession::onNotImplemented}, {"ETRN", &SmtpSession::onNotImplemented},
    {"TURN", &SmtpSession::onNotImplemented}, {"BDAT", &SmtpSession::onNotImplemented},
};

std::optional<SessionEvent> SmtpSession::command(std::string_view line) {
  std::size_t space = line.find(' ');
  std::string_view verb = line.substr(0, space);
  std::string_view argument =
      space == std::string_view::npos ? std::string_view() : trimRight(line.substr(space + 1));
  if (state_ == State::RefusedAtGreeting) {
    if (verbIs(verb, "QUIT")) return onQuit(verb, argument);
    return refuse(verb, argument, replies::refusedAtGreeting());
  }
  for (const CommandRow& row : command_table)
    if (verbIs(verb, row.verb)) return (this->*row.handler)(row.verb, argument);
  return refuse(verb, argument, replies::commandUnknown());
}

std::optional<SessionEvent> SmtpSession::onHelo(std::string_view verb, std::string_view argument) {
  bool extended = verb == "EHLO";
  if (!acceptsHeloArgument(argument)) return refuse(verb, argument, replies::syntax(verb));
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
  pending_extended_ = extended;
  return helo;
}

std::optional<SessionEvent> SmtpSession::onMail(std::string_view verb, std::string_view argument) {
  if (state_ == State::Connected) return refuse(verb, argument, replies::needHelo());
  if (state_ == State::Mail) return refuse(verb, argument, replies::nestedMail());
  if (settings_.require_tls && !tls_active_) return refuse(verb, argument, replies::mustStartTls());
  auto parsed = parseMailCommand(argument);
  if (!parsed) return refuse(verb, argument, parsed.error());
  // RFC 1870 §6: a declared size over the limit is refused before any byte of the message.
  if (parsed->size && settings_.max_message_bytes != 0 && *parsed->size > settings_.max_message_bytes)
    return refuse(verb, argument, replies::messageTooBig());
  pending_ = Pending::Mail;
  return ev::Mail{std::move(*parsed)};
}

std::optional<SessionEvent> SmtpSession::onRcpt(std::string_view verb, std::string_view argument) {
  if (state_ != State::Mail) return refuse(verb, argument, replies::needMail());
  auto parsed = parseRcptCommand(argument);
  if (!parsed) return refuse(verb, argument, parsed.error());
  ++recipients_tried_;
  if (recipients_accepted_ >= settings_.max_recipients) return refuse(verb, argument, replies::tooManyRecipients());
  pending_ = Pending::Rcpt;
  return ev::Rcpt{std::move(*parsed)};
}

std::optional<SessionEvent> SmtpSession::onData(std::string_view verb, std::string_view argument) {
  if (!argument.empty()) return refuse(verb, argument, replies::syntax(verb));
  if (state_ != State::Mail) return refuse(verb, argument, replies::needMail());
  if (recipients_tried_ == 0) return refuse(verb, argument, replies::needRcpt());
  // RFC 2920 §3.1: DATA pipelined after recipients that were all refused gets 554.
  if (recipients_accepted_ == 0) return refuse(verb, argument, replies::noValidRecipients());
  send(replies::startMailInput());
  state_ = State::Data;
  data_size_ = 0;
  data_oversized_ = false;
  data_flaw_ = Flaw::None;
  previous_line_ended_crlf_ = true;
  return std::nullopt;
}

std::optional<SessionEvent> SmtpSession::onRset(std::string_view verb, std::string_view argument) {
  if (!argument.empty()) return refuse(verb, argument, replies::syntax(verb));
  bool was_in_transaction = inTransaction();
  resetTransaction();
  if (state_ == State::Mail) state_ = State::Greeted;
  send(replies::ok());
  if (was_in_transaction) return ev::Reset{};
  return std::nullopt;
}

std::optional<SessionEvent> SmtpSession::onNoop(std::string_view, std::string_view) {
  send(replies::ok());
  return std::nullopt;
}

std::optional<SessionEvent> SmtpSession::onQuit(std::string_view, std::string_view) {
  send(replies::bye());
  state_ = State::Closed;
  return ev::Quit{};
}

std::optional<SessionEvent> SmtpSession::onVrfy(std::string_view verb, std::string_view argument) {
  if (argument.empty()) return refuse(verb, argument, replies::syntax(verb));
  send(replies::cannotVerify());
  return std::nullopt;
}

std::optional<SessionEvent> SmtpSession::onHelp(std::string_view, std::string_view) {
  send(replies::help());
  return std::nullopt;
}

std::optional<SessionEvent> SmtpSession::onStartTls(std::string_view verb, std::string_view argument) {
  if (!settings_.offer_starttls) return onNotImplemented(verb, argument);
  if (tls_active_) return refuse(verb, argument, replies::tlsAlreadyActive());
  if (!argument.empty()) return refuse(verb, argument, replies::syntax(verb));
  if (state_ == State::Connected) return refuse(verb, argument, replies::needHelo());
  if (state_ == State::Mail) return refuse(verb, argument, replies::startTlsInTransaction());
  send(replies::readyToStartTls());
  // CVE-2011-0411: whatever the client pipelined behind STARTTLS came in the clear and could
  // have been injected by anyone on the path; it is dropped, never taken as a command.
  discardInput();
  state_ = State::StartingTls;
  return ev::StartTls{};
}

void SmtpSession::discardInput() {
  std::string().swap(input_);
  consumed_ = 0;
  discarding_long_line_ = false;
  deferred_helo_.reset();
}

void SmtpSession::tlsStarted() {
  if (state_ == State::Closed) return;
  tls_active_ = true;
  discardInput();
  resetTransaction();
  pending_ = Pending::None;
  // RFC 3207 §4.2: the client must say EHLO again; MAIL before it is out of sequence.
  state_ = State::Connected;
}

std::optional<SessionEvent> SmtpSession::onNotImplemented(std::string_view verb, std::string_view argument) {
  return refuse(verb, argument, replies::notImplemented());
}

Reply SmtpSession::ehloReply() const {
  // RFC 5321 §4.1.1.1: the first line names the server, each further line one extension.
  std::string lines = settings_.hostname;
  lines += settings_.max_message_bytes ? "\nSIZE " + std::to_string(settings_.max_message_bytes) : std::string("\nSIZE");
  lines += "\nPIPELINING\n8BITMIME\nENHANCEDSTATUSCODES";
  // RFC 3207 §4.2: not offered again once TLS is up.
  if (settings_.offer_starttls && !tls_active_) lines += "\nSTARTTLS";
  return Reply::of(250, "", lines);
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
      const Reply& reply = replies::bareLineEnd();
      send(reply);
      return ev::DataRefused{reply, flaw == Flaw::BareLineFeed ? "bare LF in DATA" : "bare CR in DATA", size};
    }
    case Flaw::LineTooLong: {
      const Reply& reply = replies::dataLineTooLong();
      send(reply);
      return ev::DataRefused{reply, "line longer than 1000 octets in DATA", size};
    }
    case Flaw::None:
      break;
  }
  if (oversized) {
    const Reply& reply = replies::messageTooBig();
    send(reply);
    return ev::DataRefused{reply, "message size " + std::to_string(size) + " exceeds " +
                                      std::to_string(settings_.max_message_bytes), size};
  }
  pending_ = Pending::EndOfData;
  return ev::EndOfData{size};
}

void SmtpSession::accept() {
  switch (pending_) {
    case Pending::Helo:
      answer(pending_extended_ ? ehloReply() : replies::heloAccepted(settings_.hostname));
      return;
    case Pending::Mail:
      answer(replies::senderAccepted());
      return;
    case Pending::Rcpt:
      answer(replies::recipientAccepted());
      return;
    case Pending::EndOfData:
      answer(replies::ok());
      return;
    case Pending::None:
      return;
  }
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
