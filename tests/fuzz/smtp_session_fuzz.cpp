// libFuzzer target for SmtpSession, the server side of SMTP (tests/fuzz/README.md). The input is
// read with FuzzedDataProvider: from its end, one byte of settings, one byte of host policy, and
// up to eight split points; the rest, from its start, is what the client sends. The session is
// driven twice by the same host (the policy answers each decision by its ordinal, not by timing):
// once with the bytes whole, once in the pieces the split points make. Findings, besides crashes
// and sanitizer reports:
//  - the two runs differ in output, events or message content;
//  - a reply line is not well formed (fuzz_support.h: code, '-'/' ', one code per reply, CRLF,
//    no control characters, at most 512 octets) or the output stops inside a reply;
//  - anything (an event, a reply) after QUIT's 221 or after a 421, or a 221 without a QUIT;
//  - a DATA that started (354) does not end exactly once (EndOfData or DataRefused) before the
//    next command's event; content handed out outside DATA; an EndOfData size that is not the
//    content's;
//  - no progress: more steps than the input can explain.

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <string>
#include <variant>
#include <vector>

#include "gateway/smtp/smtp_session.h"
#include "tests/fuzz/fuzz_support.h"

namespace mailgate {
namespace {

using fuzz::require;
namespace ev = session_event;

SessionSettings settingsFrom(uint8_t byte) {
  SessionSettings settings;
  settings.hostname = "mx.test";
  constexpr uint32_t recipients[] = {100, 1, 2, 3};
  constexpr uint64_t sizes[] = {10000, 0, 10, 200};
  constexpr uint32_t errors[] = {20, 3, 1, 6};
  settings.max_recipients = recipients[byte & 3];
  settings.max_message_bytes = sizes[(byte >> 2) & 3];
  settings.max_protocol_errors = errors[(byte >> 4) & 3];
  return settings;
}

// The gateway's side, with a policy fixed by one byte: 0 answers as the golden transcripts'
// runner does (tests/unit/gateway/smtp/smtp_session_test.cpp); other values also refuse, defer,
// send 421 or close the session at some decisions, chosen by the decision's ordinal.
class Host {
 public:
  Host(const SessionSettings& settings, uint8_t policy, std::size_t input_size)
      : session_(settings), policy_(policy), step_budget_(8 * input_size + 64) {
    session_.greet(Reply::of(220, "", "mx.test ESMTP"));
    takeOutput();
  }

  void feed(std::string_view bytes) {
    session_.receive(bytes);
    run();
  }

  // After the last piece: what every run must agree on.
  void finish() {
    require(quits_ == replies_221_, "a 221 without a QUIT");
    if (!over_ && !session_.inData()) require(data_started_ == data_ended_, "a DATA neither ended nor still open");
    if (session_.inData()) require(data_started_ == data_ended_ + 1, "in DATA without its 354");
  }

  const std::string& output() const { return output_; }
  const std::string& log() const { return log_; }

 private:
  void run() {
    while (true) {
      require(--step_budget_ > 0, "no progress: more steps than the input explains");
      // The event that comes with the 221 (Quit) or a 421 (Refused: too many errors) is the last.
      bool was_over = over_;
      SessionEvent event = session_.next();
      takeOutput();
      if (std::holds_alternative<ev::NeedInput>(event)) return;
      if (std::holds_alternative<ev::Closed>(event)) {
        require(session_.closed(), "Closed event from an open session");
        over_ = true;
        return;
      }
      require(!was_over, "an event after the session ended (221 or 421 sent)");
      require(!std::holds_alternative<ev::AwaitingAnswer>(event), "awaiting an answer that was given");
      bool in_data = data_started_ > data_ended_;
      if (auto* chunk = std::get_if<ev::DataChunk>(&event)) {
        require(in_data, "message content outside DATA");
        require(!chunk->bytes.empty(), "empty DataChunk");
        message_.append(chunk->bytes);
        continue;
      }
      if (auto* end = std::get_if<ev::EndOfData>(&event)) {
        require(in_data, "EndOfData without a DATA in progress");
        require(end->size == message_.size(), "EndOfData size is not the content's");
        ++data_ended_;
        log_ += "end " + std::to_string(end->size) + " " + std::to_string(fuzz::hashOf(message_)) + "\n";
        message_.clear();
        decide(Decision::EndOfData, "");
        continue;
      }
      if (auto* refused = std::get_if<ev::DataRefused>(&event)) {
        require(in_data, "DataRefused without a DATA in progress");
        require(refused->reply.permanent(), "a DATA refused with a reply that is not 5xx");
        ++data_ended_;
        log_ += "data-refused " + refused->reply.summary() + " " + refused->reason + "\n";
        message_.clear();
        continue;
      }
      require(!in_data, "a command event in the middle of DATA");
      if (auto* helo = std::get_if<ev::Helo>(&event)) {
        for (unsigned char c : helo->name) require(c > 0x20 && c < 0x7f, "HELO name with a blank or control", helo->name);
        log_ += std::string(helo->extended ? "ehlo " : "helo ") + helo->name + "\n";
        decide(helo->extended ? Decision::Ehlo : Decision::Helo, "");
      } else if (auto* mail = std::get_if<ev::Mail>(&event)) {
        log_ += "mail " + mail->command.path.bracketed() + "\n";
        decide(Decision::Mail, "");
      } else if (auto* rcpt = std::get_if<ev::Rcpt>(&event)) {
        log_ += "rcpt " + rcpt->command.path.bracketed() + "\n";
        decide(Decision::Rcpt, rcpt->command.path.mailbox.local_part);
      } else if (std::holds_alternative<ev::Reset>(event)) {
        log_ += "reset\n";
      } else if (auto* refused = std::get_if<ev::Refused>(&event)) {
        log_ += "refused " + refused->verb + " " + refused->reply.summary() + "\n";
      } else if (std::holds_alternative<ev::Quit>(event)) {
        require(session_.closed(), "still open after QUIT");
        require(++quits_ == replies_221_, "QUIT without its 221");
        log_ += "quit\n";
      }
    }
  }

  enum class Decision { Helo, Ehlo, Mail, Rcpt, EndOfData };

  void decide(Decision decision, std::string_view local_part) {
    uint64_t roll = policy_ == 0 ? 0 : fuzz::hashOf(std::to_string(decisions_++), policy_) % 10;
    if (roll == 9) {  // the host gives up (a stage timed out, shutdown)
      session_.close(Reply::of(421, "4.4.2", "mx.test Error: timeout exceeded"));
      takeOutput();
      return;
    }
    Reply reply;
    if (roll == 8) reply = Reply::of(421, "4.3.2", "mx.test Service shutting down");
    else if (roll == 7) reply = Reply::of(451, "4.7.1", "Try again later");
    else if (roll == 6) reply = Reply::of(550, "5.7.1", "Refused");
    else switch (decision) {
      case Decision::Helo: reply = Reply::of(250, "", "mx.test"); break;
      case Decision::Ehlo: reply = Reply::of(250, "", "mx.test\nSIZE 10000\nPIPELINING\n8BITMIME\nENHANCEDSTATUSCODES"); break;
      case Decision::Mail: reply = Reply::of(250, "2.1.0", "Ok"); break;
      case Decision::Rcpt:
        if (local_part == "unknown") reply = Reply::of(550, "5.1.1", "User unknown");
        else if (local_part == "later") reply = Reply::of(451, "4.4.1", "Try again later");
        else reply = Reply::of(250, "2.1.5", "Ok");
        break;
      case Decision::EndOfData: reply = Reply::of(250, "2.0.0", "Ok: queued"); break;
    }
    session_.answer(reply);
    takeOutput();
  }

  void takeOutput() {
    std::string chunk = session_.takeOutput();
    if (chunk.empty()) return;
    require(!over_, "a reply after the session ended (221 or 421 sent)", chunk);
    auto replies = fuzz::wireReplies(chunk, Reply::max_line_octets);
    for (std::size_t i = 0; i < replies.size(); ++i) {
      int code = replies[i].code;
      if (code == 354) ++data_started_;
      require(data_started_ <= data_ended_ + 1, "a second 354 before the first DATA ended", chunk);
      if (code == 221 || code == 421) {
        require(i + 1 == replies.size(), "a reply after 221 or 421", chunk);
        require(session_.closed(), "open after sending 221 or 421", chunk);
        if (code == 221) ++replies_221_;
        ended_by_reply_ = true;
      }
    }
    output_ += chunk;
    if (ended_by_reply_) over_ = true;
  }

  SmtpSession session_;
  uint8_t policy_;
  long step_budget_;
  uint64_t decisions_ = 0;
  std::string output_;
  std::string log_;
  std::string message_;
  uint64_t data_started_ = 0;
  uint64_t data_ended_ = 0;
  uint64_t quits_ = 0;
  uint64_t replies_221_ = 0;
  bool ended_by_reply_ = false;
  bool over_ = false;
};

}  // namespace
}  // namespace mailgate

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate;
  FuzzedDataProvider provider(data, size);
  SessionSettings settings = settingsFrom(provider.ConsumeIntegral<uint8_t>());
  uint8_t policy = provider.ConsumeIntegral<uint8_t>();
  std::vector<std::size_t> splits(provider.ConsumeIntegralInRange<std::size_t>(0, 8));
  for (std::size_t& split : splits) split = provider.ConsumeIntegral<uint16_t>();
  std::string client = provider.ConsumeRemainingBytesAsString();
  for (std::size_t& split : splits) split = client.empty() ? 0 : split % (client.size() + 1);
  std::sort(splits.begin(), splits.end());

  Host whole(settings, policy, client.size());
  whole.feed(client);
  whole.finish();

  Host pieces(settings, policy, client.size());
  std::size_t at = 0;
  for (std::size_t split : splits) {
    pieces.feed(std::string_view(client).substr(at, split - at));
    at = split;
  }
  pieces.feed(std::string_view(client).substr(at));
  pieces.finish();

  fuzz::require(whole.output() == pieces.output(), "output differs when the input is split", pieces.output());
  fuzz::require(whole.log() == pieces.log(), "events differ when the input is split", pieces.log());
  return 0;
}
