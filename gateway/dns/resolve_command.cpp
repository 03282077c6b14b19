#include "gateway/dns/resolve_command.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/dns/resolver.h"
#include "gateway/util/ip_literal.h"

namespace mailgate {
namespace {

// Exit codes: the DNS answered (ok, nodata, nxdomain); it did not; the command line was wrong.
constexpr int answered = 0, failed = 1, usage = 2;
// Batch mode: questions in flight at once (the pool threads of a busy gateway ask about as many).
constexpr int batch_threads = 64;

struct TypeName {
  std::string_view name;
  uint16_t code;
};

constexpr std::array<TypeName, 6> known_types{{{"A", dns_type::A},
                                               {"AAAA", dns_type::AAAA},
                                               {"MX", dns_type::MX},
                                               {"TXT", dns_type::TXT},
                                               {"PTR", dns_type::PTR},
                                               {"SPF", dns_type::SPF}}};

std::optional<TypeName> findType(std::string_view text) {
  auto same = [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; };
  for (const TypeName& type : known_types) {
    if (std::ranges::equal(text, type.name, same)) return type;
  }
  return std::nullopt;
}

// A <character-string> as a zone file writes it (RFC 1035 §5.1): quoted, with '"' and '\' escaped
// and every octet outside printable ASCII as \DDD, so the exact bytes can be read off the screen.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c > 0x7e) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\%03u", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

struct Answer {
  std::string text;   // one line per record, or one status line
  std::string error;  // for stderr
  int code = failed;
};

Answer ask(const Resolver& resolver, std::string_view asked, const TypeName& type) {
  std::string name = questionName(asked, type.code);
  DnsRecordSet set = resolver.query(name, type.code);
  std::string prefix(name);
  if (!prefix.ends_with('.')) prefix += '.';
  prefix += ' ';
  prefix += type.name;
  Answer answer;
  if (set.status != DnsStatus::Ok) {
    answer.text = prefix + ": " + dnsStatusName(set.status) + "\n";
    answer.error = std::move(set.error);
    bool dns_answered = set.status == DnsStatus::NoData || set.status == DnsStatus::NxDomain;
    answer.code = dns_answered ? answered : failed;
    return answer;
  }
  auto line = [&](const std::string& data) { answer.text += prefix + " " + data + "\n"; };
  for (const auto& strings : set.txt_strings) {
    std::string data;
    for (const auto& text : strings) data += (data.empty() ? "" : " ") + quoted(text);
    line(strings.empty() ? "\\# 0" : data);  // no strings at all: RFC 3597 §5's empty rdata
  }
  for (const auto& address : set.addresses) line(address);
  for (const auto& [preference, exchange] : set.mx) line(std::to_string(preference) + " " + exchange);
  for (const auto& name : set.names) line(name);
  answer.code = answered;
  return answer;
}

void print(const Answer& answer) {
  std::fputs(answer.text.c_str(), stdout);
  std::fflush(stdout);  // batch mode is read line by line through a pipe
  if (!answer.error.empty()) std::fprintf(stderr, "mailgate resolve: %s\n", answer.error.c_str());
}

// Batch mode: each line of standard input is "NAME [TYPE]". Questions are answered by a fixed
// set of threads, so a slow answer (a server that does not answer) holds up no other question,
// and the answers are printed in the order of the questions, each as soon as those before it are
// out. All share one resolver, and so its cache.
int runBatch(const Resolver& resolver, const TypeName& default_type) {
  struct Slot {
    std::optional<Answer> answer;
  };
  struct Question {
    std::shared_ptr<Slot> slot;
    std::string name;
    TypeName type;
  };
  std::mutex mutex;
  std::condition_variable more;
  std::deque<Question> questions;
  std::deque<std::shared_ptr<Slot>> in_order;
  bool input_done = false;
  int worst = answered;

  auto printReady = [&] {  // with `mutex` held
    while (!in_order.empty() && in_order.front()->answer) {
      print(*in_order.front()->answer);
      worst = std::max(worst, in_order.front()->answer->code);
      in_order.pop_front();
    }
  };
  auto work = [&] {
    std::unique_lock lock(mutex);
    for (;;) {
      more.wait(lock, [&] { return !questions.empty() || input_done; });
      if (questions.empty()) return;
      Question question = std::move(questions.front());
      questions.pop_front();
      lock.unlock();
      Answer answer = ask(resolver, question.name, question.type);
      lock.lock();
      question.slot->answer = std::move(answer);
      printReady();
    }
  };
  std::vector<std::jthread> workers;
  for (int i = 0; i < batch_threads; ++i) workers.emplace_back(work);

  std::string line;
  while (std::getline(std::cin, line)) {
    std::string name, type_text;
    std::istringstream(line) >> name >> type_text;
    if (name.empty()) continue;
    auto type = type_text.empty() ? std::optional(default_type) : findType(type_text);
    auto slot = std::make_shared<Slot>();
    std::lock_guard lock(mutex);
    in_order.push_back(slot);
    if (type) {
      questions.push_back({slot, std::move(name), *type});
      more.notify_one();
    } else {
      std::string prefix = name.ends_with('.') ? name : name + ".";
      slot->answer = Answer{prefix + " " + type_text + ": error\n",
                            "unknown type '" + type_text + "' (A, AAAA, MX, TXT, PTR or SPF)", usage};
      printReady();
    }
  }
  {
    std::lock_guard lock(mutex);
    input_done = true;
  }
  more.notify_all();
  workers.clear();  // joins; the last answers are printed by the workers
  return worst;
}

}  // namespace

std::string questionName(std::string_view name, uint16_t type) {
  if (type == dns_type::PTR)
    if (auto address = IpLiteral::parse(name)) return address->reverseName();
  return std::string(name);
}

int runResolveCommand(const Config& config, std::string_view name, std::string_view type_text) {
  auto type = findType(type_text);
  if (!type) {
    std::fprintf(stderr, "mailgate resolve: unknown type '%.*s' (A, AAAA, MX, TXT, PTR or SPF)\n",
                 static_cast<int>(type_text.size()), type_text.data());
    return usage;
  }
  auto resolver = Resolver::create(config.dns);
  if (!resolver) {
    std::fprintf(stderr, "mailgate resolve: %s\n", resolver.error().c_str());
    return failed;
  }
  if (name == "-") return runBatch(**resolver, *type);
  Answer answer = ask(**resolver, name, *type);
  print(answer);
  return answer.code;
}

}  // namespace mailgate
