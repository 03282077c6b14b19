#include "gateway/check/check_command.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "filters/builtin_stages.h"
#include "filters/rules/rules_stage.h"
#include "gateway/log/transaction_record.h"
#include "gateway/relay/outgoing_message.h"
#include "gateway/smtp/relay_policy.h"

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

std::optional<Path> parsePath(const std::string& address, bool sender, std::string& error) {
  std::string argument = (sender ? "FROM:<" : "TO:<") + address + ">";
  if (sender) {
    auto parsed = parseMailCommand(argument);
    if (parsed) return parsed->path;
    error = "--from " + address + ": " + parsed.error().summary();
  } else {
    auto parsed = parseRcptCommand(argument);
    if (parsed) return parsed->path;
    error = "--rcpt " + address + ": " + parsed.error().summary();
  }
  return std::nullopt;
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

void printText(const std::string& action, const std::string& reply, double score, const std::vector<Hit>& hits,
               const std::vector<HeaderField>& headers, const Transaction& transaction) {
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
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    bool has_value = i + 1 < arguments.size();
    if (argument == "--json") request.json = true;
    else if (argument == "--from" && has_value) request.sender = arguments[++i];
    else if (argument == "--rcpt" && has_value) request.recipients.push_back(arguments[++i]);
    else if (argument == "--ip" && has_value) request.client_ip = arguments[++i];
    else if (argument == "--helo" && has_value) request.helo = arguments[++i];
    else if (argument == "--config" && has_value) config_path = arguments[++i];
    else if (argument.starts_with("--") || !request.message_path.empty()) {
      error = "unknown or incomplete argument '" + argument + "'";
      return std::nullopt;
    } else request.message_path = argument;
  }
  if (request.message_path.empty()) {
    error = "no message file given";
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
  std::ifstream file(request.message_path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "mailgate check: cannot read %s\n", request.message_path.c_str());
    return 1;
  }
  std::string message = withCrlf(std::string(std::istreambuf_iterator<char>(file), {}));

  std::string error;
  std::optional<Path> sender = request.sender.empty() ? Path{true, {}} : parsePath(request.sender, true, error);
  std::vector<Path> recipients;
  for (const std::string& address : request.recipients.empty() ? std::vector<std::string>{"postmaster"}
                                                               : request.recipients) {
    if (auto path = parsePath(address, false, error)) recipients.push_back(std::move(*path));
  }
  if (!sender || !error.empty()) {
    std::fprintf(stderr, "mailgate check: %s\n", error.c_str());
    return 1;
  }

  InlineJobRunner runner;
  Transaction transaction;
  transaction.sender = *sender;
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
    printText(action, reply, score, hits, headers, transaction);
    return 0;
  }
  nlohmann::json out = {{"verdict", action}, {"reply", reply}, {"score", score}};
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
