#include "gateway/commands/check_command.h"

#include <uv.h>

#include <cstdio>
#include <expected>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "filters/builtin_stages.h"
#include "filters/rules/rules_stage.h"
#include "gateway/smtp/smtp_session.h"
#include "gateway/uv/thread_pool.h"
#include "gateway/uv/uv_network.h"
#include "gateway/transaction/transaction_driver.h"
#include "gateway/util/ip_address.h"

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

// The client the message was checked for, saying when it is the default rather than --ip's.
std::string clientText(const CheckRequest& request) {
  return request.client_ip + (request.client_ip_given ? "" : " (the default: no --ip given)");
}

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

void printText(const CheckRequest& request, const nlohmann::json& record, double score, const std::vector<Hit>& hits,
               const std::vector<std::pair<std::string, std::string>>& headers) {
  std::printf("client:  %s, HELO %s\n", clientText(request).c_str(), request.helo.c_str());
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
    if (argument == "--json" || argument == "--record") {
      (argument == "--json" ? request.json : request.record) = true;
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
      auto address = IpAddress::parse(value);
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
  auto read = readMessage(request.message_path);
  if (!read) {
    std::fprintf(stderr, "mailgate check: %s\n", read.error().c_str());
    return 1;
  }
  std::string message = withCrlf(*read);
  MailCommand mail{request.sender, std::nullopt, BodyType::Unspecified};
  std::vector<RcptCommand> recipients;
  for (const Path& path : request.recipients) recipients.push_back(RcptCommand{path});
  if (recipients.empty()) recipients.push_back(RcptCommand{*parseRecipientAddress("postmaster")});

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
    refused = refused || host.await([&](auto answer) { driver.mail(mail, std::move(answer)); }).has_value();
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
    printText(request, record, score, hits, headers);
    return 0;
  }
  nlohmann::json out = {{"verdict", record.value("action", "")}, {"reply", record.value("reply", "")}, {"score", score}};
  out["client"] = {{"ip", request.client_ip}, {"ip_is_default", !request.client_ip_given}, {"helo", request.helo}};
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
