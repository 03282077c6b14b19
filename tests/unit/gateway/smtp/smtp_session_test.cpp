// SmtpSession, byte for byte: every golden transcript in tests/transcripts/ is replayed whole, then
// split at every byte boundary and fed one byte at a time; the replies must be the same each way.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <variant>

#include "gateway/smtp/smtp_session.h"

namespace mailgate {
namespace {

namespace ev = session_event;

struct Transcript {
  std::string name;
  SessionSettings settings;
  std::string client;    // everything the client sends, in order
  std::string server;    // everything the server must send
  std::string messages;  // every message content delivered, concatenated
};

std::string unescape(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    char next = text[++i];
    if (next == 'r') out += '\r';
    else if (next == 'n') out += '\n';
    else if (next == 't') out += '\t';
    else out += next;
  }
  return out;
}

// "{pad:N}" stands for N letters, for lines at the length limits.
std::string expand(std::string text) {
  auto at = text.find("{pad:");
  if (at == std::string::npos) return text;
  auto end = text.find('}', at);
  std::size_t count = std::stoul(text.substr(at + 5, end - at - 5));
  return text.substr(0, at) + std::string(count, 'a') + text.substr(end + 1);
}

Transcript load(const std::filesystem::path& path) {
  Transcript transcript;
  transcript.name = path.filename().string();
  transcript.settings.hostname = "mx.test";
  transcript.settings.max_message_bytes = 10000;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '@') {
      std::istringstream words(line.substr(1));
      std::string key;
      uint64_t value = 0;
      words >> key >> value;
      if (key == "max_recipients") transcript.settings.max_recipients = static_cast<uint32_t>(value);
      else if (key == "max_message_bytes") transcript.settings.max_message_bytes = value;
      else if (key == "max_protocol_errors") transcript.settings.max_protocol_errors = static_cast<uint32_t>(value);
      else BOOST_FAIL(transcript.name + ": unknown directive " + key);
      continue;
    }
    std::string tag = line.substr(0, 2);
    std::string text = line.size() > 3 ? expand(line.substr(3)) : std::string();
    if (tag == "C:") transcript.client += text + "\r\n";
    else if (tag == "R:") transcript.client += unescape(text);
    else if (tag == "S:") transcript.server += text + "\r\n";
    else if (tag == "D:") transcript.messages += text + "\r\n";
    else BOOST_FAIL(transcript.name + ": bad line: " + line);
  }
  return transcript;
}

// The host side, as the gateway's connection would answer, with a fixed policy.
struct ScriptedHost {
  SmtpSession session;
  std::string output;
  std::string messages;
  std::string current;
  std::vector<std::string> events;

  explicit ScriptedHost(const SessionSettings& settings) : session(settings) {
    session.greet(Reply::of(220, "", "mx.test ESMTP"));
  }

  void feed(std::string_view bytes) {
    session.receive(bytes);
    run();
  }

  void run() {
    while (true) {
      SessionEvent event = session.next();
      output += session.takeOutput();
      if (std::holds_alternative<ev::NeedInput>(event) || std::holds_alternative<ev::Closed>(event)) return;
      if (std::holds_alternative<ev::AwaitingAnswer>(event)) BOOST_FAIL("awaiting an answer nobody gives");
      if (auto* helo = std::get_if<ev::Helo>(&event)) {
        events.push_back("helo");
        std::string size = session.settings().max_message_bytes ? " " + std::to_string(session.settings().max_message_bytes) : "";
        session.answer(helo->extended ? Reply::of(250, "", "mx.test\nSIZE" + size + "\nPIPELINING\n8BITMIME\nENHANCEDSTATUSCODES")
                                      : Reply::of(250, "", "mx.test"));
      } else if (std::get_if<ev::Mail>(&event)) {
        events.push_back("mail");
        current.clear();
        session.answer(Reply::of(250, "2.1.0", "Ok"));
      } else if (auto* rcpt = std::get_if<ev::Rcpt>(&event)) {
        events.push_back("rcpt");
        const std::string& local = rcpt->command.path.mailbox.local_part;
        if (local == "unknown") session.answer(Reply::of(550, "5.1.1", "User unknown"));
        else if (local == "later") session.answer(Reply::of(451, "4.4.1", "Try again later"));
        else session.answer(Reply::of(250, "2.1.5", "Ok"));
      } else if (auto* chunk = std::get_if<ev::DataChunk>(&event)) {
        current.append(chunk->bytes);
      } else if (auto* end = std::get_if<ev::EndOfData>(&event)) {
        events.push_back("data");
        BOOST_TEST(end->size == current.size());
        messages += current;
        current.clear();
        session.answer(Reply::of(250, "2.0.0", "Ok: " + std::to_string(end->size) + " octets"));
      } else if (std::get_if<ev::DataRefused>(&event)) {
        events.push_back("refused-data");
        current.clear();
      } else if (std::get_if<ev::Reset>(&event)) {
        events.push_back("reset");
      } else if (std::get_if<ev::Refused>(&event)) {
        events.push_back("refused");
      } else if (std::get_if<ev::Quit>(&event)) {
        events.push_back("quit");
      }
    }
  }
};

std::vector<Transcript> allTranscripts() {
  std::vector<Transcript> transcripts;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(MAILGATE_TEST_DATA) + "/transcripts"))
    if (entry.path().extension() == ".smtp") transcripts.push_back(load(entry.path()));
  return transcripts;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(smtp_session)

BOOST_AUTO_TEST_CASE(transcripts_replayed_whole) {
  auto transcripts = allTranscripts();
  BOOST_TEST(transcripts.size() >= 15u);
  for (const auto& transcript : transcripts) {
    BOOST_TEST_CONTEXT(transcript.name) {
      ScriptedHost host(transcript.settings);
      host.feed(transcript.client);
      BOOST_TEST(host.output == transcript.server);
      BOOST_TEST(host.messages == transcript.messages);
    }
  }
}

BOOST_AUTO_TEST_CASE(transcripts_split_at_every_byte_boundary) {
  for (const auto& transcript : allTranscripts()) {
    BOOST_TEST_CONTEXT(transcript.name) {
      for (std::size_t split = 1; split < transcript.client.size(); ++split) {
        ScriptedHost host(transcript.settings);
        host.feed(std::string_view(transcript.client).substr(0, split));
        host.feed(std::string_view(transcript.client).substr(split));
        if (host.output != transcript.server || host.messages != transcript.messages) {
          BOOST_TEST(host.output == transcript.server, "split at " << split);
          BOOST_TEST(host.messages == transcript.messages, "split at " << split);
          break;
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(transcripts_fed_one_byte_at_a_time) {
  for (const auto& transcript : allTranscripts()) {
    BOOST_TEST_CONTEXT(transcript.name) {
      ScriptedHost host(transcript.settings);
      for (char byte : transcript.client) host.feed(std::string_view(&byte, 1));
      BOOST_TEST(host.output == transcript.server);
      BOOST_TEST(host.messages == transcript.messages);
    }
  }
}

BOOST_AUTO_TEST_CASE(helo_in_a_transaction_reports_the_reset_first) {
  ScriptedHost host(SessionSettings{});
  host.feed("HELO a\r\nMAIL FROM:<a@b.example>\r\nHELO c\r\n");
  std::vector<std::string> expected{"helo", "mail", "reset", "helo"};
  BOOST_TEST(host.events == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(decisions_wait_for_the_answer) {
  SmtpSession session(SessionSettings{});
  session.greet(Reply::of(220, "", "mx ESMTP"));
  session.receive("HELO a\r\nMAIL FROM:<a@b.example>\r\nNOOP\r\n");
  BOOST_TEST(std::holds_alternative<ev::Helo>(session.next()));
  BOOST_TEST(std::holds_alternative<ev::AwaitingAnswer>(session.next()));
  BOOST_TEST(std::holds_alternative<ev::AwaitingAnswer>(session.next()));
  session.answer(Reply::of(250, "", "mx"));
  auto mail = session.next();
  BOOST_REQUIRE(std::holds_alternative<ev::Mail>(mail));
  BOOST_TEST(std::get<ev::Mail>(mail).command.path.address() == "a@b.example");
  session.answer(Reply::of(451, "4.7.1", "later"));
  BOOST_TEST(std::holds_alternative<ev::NeedInput>(session.next()));
  BOOST_TEST(session.takeOutput() == "220 mx ESMTP\r\n250 mx\r\n451 4.7.1 later\r\n250 2.0.0 Ok\r\n");
  BOOST_TEST(!session.inTransaction());  // a refused MAIL opens no transaction
}

// A DATA line over 1000 octets that also holds a bare CR, or ends in a bare LF: when its first
// 1000 octets arrive alone, the session knows only that it is too long, and drops the rest. Fed
// whole, it must say the same, or the reply would hang on how TCP cut the bytes. Found by
// tests/fuzz/smtp_session_fuzz.
BOOST_AUTO_TEST_CASE(an_overlong_data_line_is_refused_alike_however_it_is_cut) {
  const std::string head = "HELO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n";
  const std::string refused = "500 5.5.2 Error: line too long in message data\r\n";
  for (const std::string& line : {std::string(1050, 'a') + "\r" + std::string(40, 'b') + "\r\n",
                                  std::string(1100, 'a') + "\n"}) {
    std::string client = head + line + "\r\n.\r\nQUIT\r\n";
    ScriptedHost whole(SessionSettings{});
    whole.feed(client);
    ScriptedHost cut(SessionSettings{});
    std::size_t at = head.size() + 1010;
    cut.feed(std::string_view(client).substr(0, at));
    cut.feed(std::string_view(client).substr(at));
    BOOST_TEST(cut.output.find(refused) != std::string::npos, cut.output);
    BOOST_TEST(whole.output == cut.output);
  }
}

BOOST_AUTO_TEST_CASE(a_421_answer_closes_the_session) {
  SmtpSession session(SessionSettings{});
  session.greet(Reply::of(220, "", "mx ESMTP"));
  session.receive("HELO a\r\nNOOP\r\n");
  BOOST_TEST(std::holds_alternative<ev::Helo>(session.next()));
  session.answer(Reply::of(421, "4.3.2", "going away"));
  BOOST_TEST(std::holds_alternative<ev::Closed>(session.next()));
  BOOST_TEST(session.takeOutput() == "220 mx ESMTP\r\n421 4.3.2 going away\r\n");
}

BOOST_AUTO_TEST_CASE(refused_greeting_closes) {
  SmtpSession session(SessionSettings{});
  session.greet(Reply::of(421, "4.7.0", "too many connections"));
  session.receive("HELO a\r\n");
  BOOST_TEST(std::holds_alternative<ev::Closed>(session.next()));
  BOOST_TEST(session.takeOutput() == "421 4.7.0 too many connections\r\n");
}

BOOST_AUTO_TEST_CASE(a_flood_of_pipelined_noops_costs_no_stack) {
  ScriptedHost host(SessionSettings{});
  std::string flood;
  for (int i = 0; i < 200000; ++i) flood += "NOOP\n";
  host.output.clear();
  host.feed(flood);
  BOOST_TEST(host.output.size() == 200000u * std::string("250 2.0.0 Ok\r\n").size() + std::string("220 mx.test ESMTP\r\n").size());
}

BOOST_AUTO_TEST_CASE(helo_with_control_characters_is_refused) {
  ScriptedHost host(SessionSettings{});
  host.feed("EHLO a\r.\rb\r\nHELO a\tb\r\nHELO ok.example\r\n");
  BOOST_TEST(host.output == "220 mx.test ESMTP\r\n501 5.5.4 Syntax: EHLO hostname\r\n501 5.5.4 Syntax: HELO hostname\r\n250 mx.test\r\n");
}

BOOST_AUTO_TEST_CASE(large_message_memory_stays_bounded) {
  // 20 MiB of DATA through the session: no chunk holds more than what one receive() gave it,
  // and the input buffer never holds more than a line past what was fed.
  SessionSettings settings;
  SmtpSession session(settings);
  session.greet(Reply::of(220, "", "mx"));
  session.receive("HELO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
  for (int i = 0; i < 3; ++i) {
    session.next();
    session.answer(Reply::of(250, "2.0.0", "Ok"));
  }
  BOOST_TEST(std::holds_alternative<ev::NeedInput>(session.next()));
  std::string block;
  for (int i = 0; i < 800; ++i) block += std::string(78, 'x') + "\r\n";  // 64000 bytes
  uint64_t total = 0;
  std::size_t largest_chunk = 0;
  for (int round = 0; round < 330; ++round) {
    session.receive(block);
    BOOST_TEST(session.bufferedInput() <= block.size());
    while (true) {
      auto event = session.next();
      if (auto* chunk = std::get_if<ev::DataChunk>(&event)) {
        total += chunk->bytes.size();
        largest_chunk = std::max(largest_chunk, chunk->bytes.size());
        continue;
      }
      break;
    }
  }
  session.receive(".\r\n");
  auto end = session.next();
  BOOST_REQUIRE(std::holds_alternative<ev::EndOfData>(end));
  BOOST_TEST(std::get<ev::EndOfData>(end).size == total);
  BOOST_TEST(total == 330u * 64000u);
  BOOST_TEST(largest_chunk <= block.size());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
