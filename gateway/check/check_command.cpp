#include "gateway/check/check_command.h"

#include <cstdio>
#include <expected>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "filters/builtin_stages.h"
#include "filters/rules/rules_stage.h"
#include "gateway/log/transaction_record.h"
#include "gateway/relay/outgoing_message.h"
#include "gateway/smtp/relay_policy.h"
#include "gateway/smtp/smtp_session.h"
#include "gateway/util/ip_literal.h"

namespace mailgate {
namespace {

// A message file as it would arrive after DATA: lines end in CRLF (files on disk mostly end them
// in LF, which the SMTP session would refuse as bare LFs).
std::string withCrlf(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

// The message file, or standard input for "-" (a message piped from another tool).
std::expected<std::string, std::string> readMessage(const std::string& path) {
  std::ifstream file;
  std::istream* input = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return std::unexpected("cannot read " + path);
    input = &file;
  }
  std::string text(std::istreambuf_iterator<char>(*input), {});
  if (input->bad()) return std::unexpected("cannot read " + (path == "-" ? std::string("standard input") : path));
  return text;
}

struct Hit {
  std::string rule;
  double score = 0;
  std::string description;
};

std::vector<Hit> ruleHits(const std::vector<StageOutcome>& outcomes) {
  std::vector<Hit> hits;
  for (const auto& outcome : outcomes) {
    for (const auto& [key, items] : outcome.detail_lists) {
      if (key != "hits") continue;
      for (const auto& item : items) {
        Hit hit;
        for (const auto& [name, value] : item) {
          if (name == "rule") hit.rule = value;
          if (name == "score") hit.score = std::strtod(value.c_str(), nullptr);
          if (name == "description") hit.description = value;
        }
        hits.push_back(std::move(hit));
      }
    }
  }
  return hits;
}

// One phase through the pipeline; jobs run at once on this thread.
PhaseResult runPhase(const Pipeline& pipeline, StageInput input, JobRunner& runner) {
  std::optional<PhaseResult> result;
  pipeline.run(std::move(input), runner, [&](PhaseResult done) { result = std::move(done); });
  return result ? std::move(*result) : PhaseResult{};
}

// The client the message was checked for, saying when it is the default rather than --ip's.
std::string clientText(const CheckRequest& request) {
  return request.client_ip + (request.client_ip_given ? "" : " (the default: no --ip given)");
}

void printText(const CheckRequest& request, const std::string& action, const std::string& reply, double score,
               const std::vector<Hit>& hits, const std::vector<HeaderField>& headers, const Transaction& transaction) {
  std::printf("client:  %s, HELO %s\n", clientText(request).c_str(), request.helo.c_str());
  // Scores shown as the X-Spam-* headers show them (formatScore), not printf's rounding.
  std::printf("verdict: %s\nreply:   %s\nscore:   %s\n", action.c_str(), reply.c_str(), formatScore(score).c_str());
  std::printf("rule hits:%s\n", hits.empty() ? " none" : "");
  for (const auto& hit : hits)
    std::printf("  %6s  %-28s %s\n", formatScore(hit.score).c_str(), hit.rule.c_str(), hit.description.c_str());
  std::printf("headers added:%s\n", headers.empty() ? " none" : "");
  for (const auto& header : headers) {
    std::string line = header.line();
    line.erase(line.size() - 2);
    std::string shown;
    for (char c : line)
      if (c != '\r') shown += c;
    std::printf("  %s\n", shown.c_str());
  }
  std::printf("stages:\n");
  for (const auto& outcome : transaction.outcomes)
    std::printf("  %-10s %-5s %-9s%s %s%s\n", outcome.stage.c_str(), phaseName(outcome.phase), kindName(outcome.kind),
                outcome.shadow ? " (shadow)" : "", outcome.reason.c_str(),
                outcome.reply.empty() ? "" : (" → " + outcome.reply).c_str());
}

}  // namespace

std::optional<CheckRequest> parseCheckArguments(const std::vector<std::string>& arguments,
                                                std::optional<std::string>& config_path, std::string& error) {
  CheckRequest request;
  bool message_given = false;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    bool has_value = i + 1 < arguments.size();
    const std::string value = has_value ? arguments[i + 1] : std::string();
    auto bad = [&](const std::string& why) {
      error = argument + " " + value + ": " + why;
      return std::nullopt;
    };
    if (argument == "--json") {
      request.json = true;
      continue;
    }
    if (argument == "-" || !argument.starts_with("--")) {
      if (message_given) {
        error = "more than one message given ('" + request.message_path + "', '" + argument + "')";
        return std::nullopt;
      }
      request.message_path = argument;
      message_given = true;
      continue;
    }
    if (!has_value) {
      error = "unknown or incomplete argument '" + argument + "'";
      return std::nullopt;
    }
    ++i;
    if (argument == "--from") {
      auto sender = parseSenderAddress(value);
      if (!sender) return bad(sender.error().summary());
      request.sender = std::move(*sender);
    } else if (argument == "--rcpt") {
      auto recipient = parseRecipientAddress(value);
      if (!recipient) return bad(recipient.error().summary());
      request.recipients.push_back(std::move(*recipient));
    } else if (argument == "--ip") {
      auto address = IpLiteral::parse(value);
      if (!address) return bad("not an IPv4 or IPv6 address");
      request.client_ip = address->text();
      request.client_ip_given = true;
    } else if (argument == "--helo") {
      if (!SmtpSession::acceptsHeloArgument(value))
        return bad("not a HELO argument a session accepts (a domain or address literal: printable, no spaces)");
      request.helo = value;
    } else if (argument == "--config") {
      config_path = value;
    } else {
      error = "unknown argument '" + argument + "'";
      return std::nullopt;
    }
  }
  if (!message_given) {
    error = "no message file given (\"-\": standard input)";
    return std::nullopt;
  }
  return request;
}

int runCheckCommand(const Config& config, const CheckRequest& request) {
  auto built = buildPipeline(config);
  if (!built) {
    for (const auto& problem : built.error()) std::fprintf(stderr, "%s\n", problem.text().c_str());
    return 1;
  }
  const Pipeline& pipeline = **built;
  auto read = readMessage(request.message_path);
  if (!read) {
    std::fprintf(stderr, "mailgate check: %s\n", read.error().c_str());
    return 1;
  }
  std::string message = withCrlf(*read);
  std::vector<Path> recipients = request.recipients;
  if (recipients.empty()) recipients.push_back(*parseRecipientAddress("postmaster"));

  InlineJobRunner runner;
  Transaction transaction;
  transaction.sender = request.sender;
  transaction.spool = std::make_shared<Spool>(config.spool.path, config.spool.memory_limit);
  auto input = [&](Phase phase) {
    StageInput in;
    in.phase = phase;
    in.client_ip = request.client_ip;
    in.helo = request.helo;
    in.hostname = config.server.hostname;
    in.background = &runner;
    if (phase >= Phase::MailFrom) {
      in.sender = transaction.sender;
      in.scratch = transaction.scratch;
      in.recipients = transaction.accepted;
    }
    if (phase == Phase::EndOfData) {
      in.message = transaction.spool;
      in.message_size = transaction.size;
    }
    return in;
  };

  std::optional<Reply> refusal;
  auto refused = [&](Phase phase, std::optional<Path> recipient = std::nullopt) {
    StageInput in = input(phase);
    in.recipient = std::move(recipient);
    if (!pipeline.hooks(phase)) return false;
    PhaseResult result = runPhase(pipeline, std::move(in), runner);
    Reply reply = result.reply;
    if (!transaction.absorb(std::move(result))) return false;
    refusal = reply;
    return true;
  };
  bool ended = refused(Phase::Connect) || refused(Phase::Helo) || refused(Phase::MailFrom);
  if (!ended) {
    for (const Path& recipient : recipients) {
      if (auto relay_refusal = relayRefusal(config.server, recipient)) {
        refusal = relay_refusal;
        transaction.recipients.push_back({recipient.address(), refusal->summary()});
        continue;
      }
      bool refused_here = refused(Phase::Rcpt, recipient);
      transaction.recipients.push_back({recipient.address(), refused_here ? refusal->summary() : "250 2.1.5 Ok"});
      if (!refused_here) transaction.accepted.push_back(recipient);
    }
    ended = transaction.accepted.empty();
  }
  if (!ended) {
    refusal.reset();
    if (auto appended = transaction.spool->append(message); !appended) {
      std::fprintf(stderr, "mailgate check: spooling the message: %s\n", appended.error().c_str());
      return 1;
    }
    transaction.size = message.size();
    if (pipeline.readsMessageWhileArriving()) {
      constexpr std::size_t piece = 64 * 1024;
      for (std::size_t at = 0; at < message.size(); at += piece)
        pipeline.messageBytes(input(Phase::EndOfData), std::string_view(message).substr(at, piece));
    }
    ended = refused(Phase::EndOfData);
  }

  std::string reply = refusal ? refusal->summary() : "250 2.0.0 accepted (the gateway relays the downstream's reply)";
  std::string action = refusal ? actionOf(*refusal, transaction.tagged) : (transaction.tagged ? "tag" : "accept");
  std::vector<HeaderField> headers;
  if (!refusal) {
    if (!transaction.auth_results.empty())
      headers.push_back({"Authentication-Results", authenticationResultsValue(config.server.hostname, transaction.auth_results)});
    for (const auto& header : transaction.headers)
      if (!header.removesOnly()) headers.push_back(header);
  }
  std::vector<Hit> hits = ruleHits(transaction.outcomes);
  // Every stage's score, a rules score under tag_score included (the transaction's own score
  // counts tags only).
  double score = 0;
  for (const auto& outcome : transaction.outcomes) score += outcome.score;

  if (!request.json) {
    printText(request, action, reply, score, hits, headers, transaction);
    return 0;
  }
  nlohmann::json out = {{"verdict", action}, {"reply", reply}, {"score", score}};
  out["client"] = {{"ip", request.client_ip}, {"ip_is_default", !request.client_ip_given}, {"helo", request.helo}};
  out["hits"] = nlohmann::json::array();
  for (const auto& hit : hits) out["hits"].push_back({{"rule", hit.rule}, {"score", hit.score}, {"description", hit.description}});
  out["headers"] = nlohmann::json::array();
  for (const auto& header : headers) out["headers"].push_back({{"name", header.name}, {"value", header.value}});
  out["recipients"] = nlohmann::json::array();
  for (const auto& recipient : transaction.recipients)
    out["recipients"].push_back({{"address", recipient.address}, {"reply", recipient.reply}});
  out["stages"] = nlohmann::json::array();
  for (const auto& outcome : transaction.outcomes) out["stages"].push_back(stageRecord(outcome));
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace mailgate
