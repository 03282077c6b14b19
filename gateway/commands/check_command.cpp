#include "gateway/commands/check_command.h"

#include <uv.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "filters/builtin_stages.h"
#include "filters/rules/rules_stage.h"
#include "gateway/uv/thread_pool.h"
#include "gateway/uv/uv_network.h"
#include "gateway/transaction/transaction_driver.h"

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

// `mailgate check` delivers nowhere: every recipient the pipeline passes is taken, and the
// message's added header fields are kept to be shown.
class NowhereTarget final : public DeliveryTarget {
 public:
  void recipient(const Runtime&, const Envelope&, const Path&, RecipientDone done) override { done(std::nullopt); }
  void message(const Runtime&, std::shared_ptr<const OutgoingMessage> message, MessageDone done) override {
    added_headers = message->addedHeaders();
    done({Reply::of(250, "2.0.0", "accepted (the gateway relays the downstream's reply)")});
  }
  void reset() override {}
  void release() override {}

  std::string added_headers;
};

// The driver's host for one offline run: a libuv loop of its own, the real thread pool, real
// network access, and the records kept to be printed.
class CheckHost final : public DriverHost {
 public:
  explicit CheckHost(std::shared_ptr<const Runtime> runtime) : runtime_(std::move(runtime)) { uv_loop_init(&loop_); }
  ~CheckHost() override {
    network_.closeAll();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }

  std::shared_ptr<const Runtime> currentRuntime() override { return runtime_; }
  JobRunner& jobs() override { return jobs_; }
  NetworkAccess* network() override { return &network_; }
  DeliveryTarget& deliveryTarget() override { return target_; }
  void record(const nlohmann::json& record) override { records.push_back(record); }

  // Calls `step` with an answer callback and runs the loop until the answer came.
  std::optional<Reply> await(std::move_only_function<void(TransactionDriver::Answer)> step) {
    bool answered = false;
    std::optional<Reply> reply;
    step([&answered, &reply](std::optional<Reply> given) {
      reply = std::move(given);
      answered = true;
    });
    while (!answered && uv_run(&loop_, UV_RUN_ONCE) != 0) {
    }
    if (!answered) reply = Reply::of(451, "4.3.0", "Error: the check did not finish");
    return reply;
  }

  std::vector<nlohmann::json> records;
  NowhereTarget target_;

 private:
  std::shared_ptr<const Runtime> runtime_;
  uv_loop_t loop_{};
  UvJobRunner jobs_{&loop_};
  UvNetwork network_{&loop_};
};

struct Hit {
  std::string rule;
  double score = 0;
  std::string description;
};

std::vector<Hit> ruleHits(const nlohmann::json& stages) {
  std::vector<Hit> hits;
  for (const auto& stage : stages) {
    if (!stage.contains("hits")) continue;
    for (const auto& item : stage["hits"]) {
      Hit hit;
      hit.rule = item.value("rule", "");
      hit.description = item.value("description", "");
      const auto& score = item.value("score", nlohmann::json());
      hit.score = score.is_number() ? score.get<double>() : std::strtod(score.get<std::string>().c_str(), nullptr);
      hits.push_back(std::move(hit));
    }
  }
  return hits;
}

// The added fields as (name, value), but the gateway's own Received: (a check is not a hop).
std::vector<std::pair<std::string, std::string>> addedFields(const std::string& block) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t at = 0;
  while (at < block.size()) {
    std::size_t end = at;
    do {
      end = block.find("\r\n", end);
      if (end == std::string::npos) end = block.size();
      else end += 2;
    } while (end < block.size() && (block[end] == ' ' || block[end] == '\t'));
    std::string field = block.substr(at, end - at);
    if (field.ends_with("\r\n")) field.resize(field.size() - 2);
    at = end;
    std::size_t colon = field.find(':');
    if (colon == std::string::npos) continue;
    std::string name = field.substr(0, colon);
    std::size_t value_start = field.find_first_not_of(' ', colon + 1);
    if (name == "Received") continue;
    fields.emplace_back(name, value_start == std::string::npos ? "" : field.substr(value_start));
  }
  return fields;
}

void printText(const nlohmann::json& record, double score, const std::vector<Hit>& hits,
               const std::vector<std::pair<std::string, std::string>>& headers) {
  // Scores shown as the X-Spam-* headers show them (formatScore), not printf's rounding.
  std::printf("verdict: %s\nreply:   %s\nscore:   %s\n", record.value("action", "").c_str(),
              record.value("reply", "").c_str(), formatScore(score).c_str());
  std::printf("rule hits:%s\n", hits.empty() ? " none" : "");
  for (const auto& hit : hits)
    std::printf("  %6s  %-28s %s\n", formatScore(hit.score).c_str(), hit.rule.c_str(), hit.description.c_str());
  std::printf("headers added:%s\n", headers.empty() ? " none" : "");
  for (const auto& [name, value] : headers) {
    std::string shown;
    for (char c : name + ": " + value)
      if (c != '\r') shown += c;
    std::printf("  %s\n", shown.c_str());
  }
  std::printf("stages:\n");
  for (const auto& stage : record.value("stages", nlohmann::json::array())) {
    std::string reply = stage.value("reply", "");
    std::printf("  %-10s %-5s %-9s%s %s%s\n", stage.value("stage", "").c_str(), stage.value("phase", "").c_str(),
                stage.value("verdict", "").c_str(), stage.value("shadow", false) ? " (shadow)" : "",
                stage.value("reason", "").c_str(), reply.empty() ? "" : (" → " + reply).c_str());
  }
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

}  // namespace

std::optional<CheckRequest> parseCheckArguments(const std::vector<std::string>& arguments,
                                                std::optional<std::string>& config_path, std::string& error) {
  CheckRequest request;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    bool has_value = i + 1 < arguments.size();
    if (argument == "--json") request.json = true;
    else if (argument == "--record") request.record = true;
    else if (argument == "--from" && has_value) request.sender = arguments[++i];
    else if (argument == "--rcpt" && has_value) request.recipients.push_back(arguments[++i]);
    else if (argument == "--ip" && has_value) request.client_ip = arguments[++i];
    else if (argument == "--helo" && has_value) request.helo = arguments[++i];
    else if (argument == "--config" && has_value) config_path = arguments[++i];
    else if ((argument.starts_with("--") && argument != "-") || !request.message_path.empty()) {
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
  std::string raw;
  if (request.message_path == "-") {
    raw.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream file(request.message_path, std::ios::binary);
    if (!file) {
      std::fprintf(stderr, "mailgate check: cannot read %s\n", request.message_path.c_str());
      return 1;
    }
    raw.assign(std::istreambuf_iterator<char>(file), {});
  }
  std::string message = withCrlf(raw);

  std::string error;
  std::optional<MailCommand> mail;
  if (request.sender.empty()) mail = MailCommand{Path{true, {}}, std::nullopt, BodyType::Unspecified};
  else if (auto path = parsePath(request.sender, true, error)) mail = MailCommand{*path, std::nullopt, BodyType::Unspecified};
  std::vector<RcptCommand> recipients;
  for (const std::string& address : request.recipients.empty() ? std::vector<std::string>{"postmaster"}
                                                               : request.recipients) {
    if (auto path = parsePath(address, false, error)) recipients.push_back(RcptCommand{std::move(*path)});
  }
  if (!mail || !error.empty()) {
    std::fprintf(stderr, "mailgate check: %s\n", error.c_str());
    return 1;
  }

  // The check delivers nowhere, so it needs no Maildir even where a session would use one.
  auto runtime = std::make_shared<Runtime>();
  runtime->config = std::make_shared<const Config>(config);
  runtime->pipeline = std::move(*built);
  CheckHost host(runtime);
  {
    SessionFacts facts;
    facts.session = "check";
    facts.client_ip = request.client_ip;
    TransactionDriver driver(host, facts);
    // The same steps as a session, each answered before the next, as a client that waits.
    bool refused = host.await([&](auto answer) { driver.connect(std::move(answer)); }).has_value();
    refused = refused || host.await([&](auto answer) { driver.helo(request.helo, true, std::move(answer)); }).has_value();
    refused = refused || host.await([&](auto answer) { driver.mail(*mail, std::move(answer)); }).has_value();
    bool any_accepted = false;
    for (const RcptCommand& recipient : recipients) {
      if (refused) break;
      auto reply = host.await([&](auto answer) { driver.rcpt(recipient, std::move(answer)); });
      any_accepted = any_accepted || !reply || reply->positive();
    }
    if (!refused && any_accepted) {
      constexpr std::size_t piece = 64 * 1024;
      for (std::size_t at = 0; at < message.size(); at += piece)
        driver.messageBytes(std::string_view(message).substr(at, piece));
      host.await([&](auto answer) { driver.endOfData(message.size(), std::move(answer)); });
    }
    driver.end("quit");
  }

  // The record that says what happened: the transaction's; else the refused HELO's; else the
  // session's (refused at connect).
  nlohmann::json record = host.records.empty() ? nlohmann::json::object() : host.records.back();
  for (std::string_view type : {"command", "transaction"})
    for (const auto& candidate : host.records)
      if (candidate.value("type", "") == type) record = candidate;
  nlohmann::json stages = record.value("stages", nlohmann::json::array());
  std::vector<Hit> hits = ruleHits(stages);
  bool accepted = record.value("reply", "").starts_with("2");
  auto headers = accepted ? addedFields(host.target_.added_headers) : decltype(addedFields("")){};
  // Every stage's score, a rules score under tag_score included (the transaction's own score
  // counts tags only).
  double score = 0;
  for (const auto& stage : stages) {
    const auto& value = stage.value("score", nlohmann::json());
    if (value.is_number()) score += value.get<double>();
  }

  if (request.record) {
    // The decision record a session would have logged for this message, as one JSON line.
    std::printf("%s\n", record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (!request.json) {
    printText(record, score, hits, headers);
    return 0;
  }
  nlohmann::json out = {{"verdict", record.value("action", "")}, {"reply", record.value("reply", "")}, {"score", score}};
  out["hits"] = nlohmann::json::array();
  for (const auto& hit : hits) out["hits"].push_back({{"rule", hit.rule}, {"score", hit.score}, {"description", hit.description}});
  out["headers"] = nlohmann::json::array();
  for (const auto& [name, value] : headers) out["headers"].push_back({{"name", name}, {"value", value}});
  out["recipients"] = nlohmann::json::array();
  for (const auto& recipient : record.value("recipients", nlohmann::json::array()))
    out["recipients"].push_back({{"address", recipient.value("address", "")}, {"reply", recipient.value("reply", "")}});
  out["stages"] = stages;
  std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return 0;
}

}  // namespace mailgate
