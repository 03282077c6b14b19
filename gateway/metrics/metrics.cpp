#include "gateway/metrics/metrics.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "gateway/spool/spool.h"

namespace mailgate {
namespace {

constexpr std::array<std::string_view, 6> transaction_actions = {"accept", "tag", "tempfail", "reject", "abandoned", "other"};
constexpr std::array<std::string_view, 3> session_actions = {"none", "tempfail", "reject"};

template <std::size_t N>
std::size_t indexOf(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == name) return i;
  return N - 1;
}

std::string text(const nlohmann::json& record, const char* key) {
  auto found = record.find(key);
  return found != record.end() && found->is_string() ? found->get<std::string>() : std::string();
}

std::size_t replyClass(std::string_view reply) {
  return !reply.empty() && reply[0] >= '1' && reply[0] <= '5' ? static_cast<std::size_t>(reply[0] - '0') : 0;
}

// A connection record's reason as a label: the fixed reasons as they are; a PROXY header's parse
// error (free text) as one value, so that a scanner cannot create series at will.
std::string refusalReason(const std::string& reason) {
  if (reason == "max_connections" || reason == "max_connections_per_client") return reason;
  if (reason == "idle timeout") return "idle_timeout";
  if (reason == "command timeout") return "command_timeout";
  if (reason.starts_with("PROXY protocol from")) return "untrusted_proxy";
  return "bad_proxy_header";
}

// Prometheus text format: a label value escapes backslash, double quote and line feed.
std::string labelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP " + std::string(name) + " " + std::string(help) + "\n";
  out += "# TYPE " + std::string(name) + " " + std::string(type) + "\n";
}

void sample(std::string& out, std::string_view name, std::string_view labels, uint64_t value) {
  out += std::string(name) + (labels.empty() ? "" : "{" + std::string(labels) + "}") + " " + std::to_string(value) + "\n";
}

}  // namespace

void Metrics::connectionOpened() {
  connections_open_.fetch_add(1, std::memory_order_relaxed);
  connections_total_.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::connectionClosed() { connections_open_.fetch_sub(1, std::memory_order_relaxed); }

void Metrics::repliesWritten(std::string_view output) {
  // RFC 5321 §4.2.1: "NNN-text" continues a reply, "NNN text" (or "NNN") ends it.
  std::size_t at = 0;
  while (at + 3 <= output.size()) {
    std::size_t end = output.find("\r\n", at);
    if (end == std::string_view::npos) end = output.size();
    std::string_view line = output.substr(at, end - at);
    if (line.size() >= 3 && (line.size() == 3 || line[3] == ' '))
      replies_by_class_[replyClass(line)].fetch_add(1, std::memory_order_relaxed);
    at = end + 2;
  }
}

void Metrics::observe(const nlohmann::json& record) {
  std::string type = text(record, "type");
  if (type == "transaction") {
    transactions_by_action_[indexOf(transaction_actions, text(record, "action"))].fetch_add(1, std::memory_order_relaxed);
    std::string downstream = text(record, "downstream_reply");
    auto durations = record.find("durations");
    if (durations != record.end() && durations->is_object()) {
      double total = durations->value("total_ms", 0.0);
      transaction_latency_.observe(total / 1000.0);
      if (!downstream.empty()) downstream_latency_.observe(durations->value("downstream_ms", 0.0) / 1000.0);
    }
    if (!downstream.empty()) downstream_by_class_[replyClass(downstream)].fetch_add(1, std::memory_order_relaxed);
    // The connect and HELO stages' outcomes are copied into every transaction of a session:
    // counted with its first only.
    std::string id = text(record, "transaction");
    auto stages = record.find("stages");
    if (stages != record.end()) observeStages(*stages, id.ends_with(".1"));
  } else if (type == "session") {
    sessions_by_action_[indexOf(session_actions, text(record, "action"))].fetch_add(1, std::memory_order_relaxed);
    auto stages = record.find("stages");
    if (stages != record.end()) observeStages(*stages, true);
    std::string action = text(record, "action");
    if (action == "reject" || action == "tempfail") {
      std::lock_guard lock(mutex_);
      ++refusals_["connect_stage"];
    }
  } else if (type == "connection") {
    std::string reason = refusalReason(text(record, "reason"));
    std::lock_guard lock(mutex_);
    ++refusals_[reason];
  }
}

void Metrics::observeStages(const nlohmann::json& stages, bool with_session_level) {
  if (!stages.is_array()) return;
  std::lock_guard lock(mutex_);
  for (const auto& stage : stages) {
    if (!stage.is_object()) continue;
    std::string phase = text(stage, "phase");
    if (!with_session_level && (phase == "connect" || phase == "helo")) continue;
    std::string name = text(stage, "stage");
    ++stage_verdicts_[StageKey{name, text(stage, "verdict")}];
    auto& latency = stage_latency_[name];
    if (!latency) latency = std::make_unique<Histogram>();
    latency->observe(stage.value("ms", 0.0) / 1000.0);
    auto hits = stage.find("hits");
    if (hits == stage.end() || !hits->is_array()) continue;
    for (const auto& hit : *hits)
      if (hit.is_object()) ++rule_hits_[text(hit, "rule")];
  }
}

std::string Metrics::render() const {
  std::string out;
  header(out, "mailgate_build_info", "gauge", "The running version.");
  sample(out, "mailgate_build_info", "version=\"" + labelValue(MAILGATE_VERSION) + "\"", 1);

  header(out, "mailgate_connections_open", "gauge", "Client connections open now.");
  sample(out, "mailgate_connections_open", "", connections_open_.load(std::memory_order_relaxed));
  header(out, "mailgate_connections_total", "counter", "Client connections accepted.");
  sample(out, "mailgate_connections_total", "", connections_total_.load(std::memory_order_relaxed));

  header(out, "mailgate_replies_total", "counter", "SMTP replies sent to clients, by code class.");
  for (std::size_t code = 2; code <= 5; ++code)
    sample(out, "mailgate_replies_total", "class=\"" + std::to_string(code) + "xx\"", replies_by_class_[code].load(std::memory_order_relaxed));

  header(out, "mailgate_transactions_total", "counter", "Transactions by the action that ended them.");
  for (std::size_t i = 0; i < transaction_actions.size(); ++i) {
    uint64_t value = transactions_by_action_[i].load(std::memory_order_relaxed);
    if (i < 4 || value > 0)  // the four decisions always, so that rate() has a series from the start
      sample(out, "mailgate_transactions_total", "action=\"" + std::string(transaction_actions[i]) + "\"", value);
  }
  header(out, "mailgate_transaction_duration_seconds", "histogram", "From MAIL FROM to the decision.");
  transaction_latency_.render(out, "mailgate_transaction_duration_seconds", "");

  header(out, "mailgate_sessions_without_transaction_total", "counter",
         "Sessions that ended without a transaction, by action (none: never refused).");
  for (std::size_t i = 0; i < session_actions.size(); ++i)
    sample(out, "mailgate_sessions_without_transaction_total", "action=\"" + std::string(session_actions[i]) + "\"",
           sessions_by_action_[i].load(std::memory_order_relaxed));

  header(out, "mailgate_downstream_replies_total", "counter", "The downstream's replies to messages, by code class.");
  for (std::size_t code = 2; code <= 5; ++code)
    sample(out, "mailgate_downstream_replies_total", "class=\"" + std::to_string(code) + "xx\"",
           downstream_by_class_[code].load(std::memory_order_relaxed));
  header(out, "mailgate_downstream_duration_seconds", "histogram", "Time spent waiting for the downstream per transaction.");
  downstream_latency_.render(out, "mailgate_downstream_duration_seconds", "");

  header(out, "mailgate_spool_bytes", "gauge", "Message bytes held in spools (memory and files) now.");
  sample(out, "mailgate_spool_bytes", "", Spool::bytesHeld());

  header(out, "mailgate_log_records_dropped_total", "counter", "Decision records dropped (the log could not keep up).");
  sample(out, "mailgate_log_records_dropped_total", "", dropped_records_ ? dropped_records_() : 0);

  auto [questions, cache_hits] = dns_counts_ ? dns_counts_() : std::pair<uint64_t, uint64_t>{0, 0};
  header(out, "mailgate_dns_questions_total", "counter", "Questions asked of the resolver by the stages.");
  sample(out, "mailgate_dns_questions_total", "", questions);
  header(out, "mailgate_dns_cache_hits_total", "counter", "Questions answered from the resolver's answer cache.");
  sample(out, "mailgate_dns_cache_hits_total", "", cache_hits);

  if (history_counts_) {
    auto [stored, dropped] = history_counts_();
    header(out, "mailgate_history_records_stored_total", "counter", "Decision records stored in the history.");
    sample(out, "mailgate_history_records_stored_total", "", stored);
    header(out, "mailgate_history_records_dropped_total", "counter", "Decision records the history could not take (the log has them).");
    sample(out, "mailgate_history_records_dropped_total", "", dropped);
  }

  std::lock_guard lock(mutex_);
  header(out, "mailgate_connections_refused_total", "counter", "Connections refused or closed by the gateway, by reason.");
  for (std::string_view reason : {"max_connections", "max_connections_per_client"})
    if (!refusals_.contains(std::string(reason))) sample(out, "mailgate_connections_refused_total", "reason=\"" + std::string(reason) + "\"", 0);
  for (const auto& [reason, count] : refusals_)
    sample(out, "mailgate_connections_refused_total", "reason=\"" + labelValue(reason) + "\"", count);

  header(out, "mailgate_stage_verdicts_total", "counter", "Stage outcomes by stage and verdict.");
  for (const auto& [key, count] : stage_verdicts_)
    sample(out, "mailgate_stage_verdicts_total", "stage=\"" + labelValue(key.stage) + "\",verdict=\"" + labelValue(key.verdict) + "\"", count);
  header(out, "mailgate_stage_duration_seconds", "histogram", "How long each stage took.");
  for (const auto& [stage, histogram] : stage_latency_)
    histogram->render(out, "mailgate_stage_duration_seconds", "stage=\"" + labelValue(stage) + "\"");

  std::vector<std::pair<std::string, uint64_t>> rules(rule_hits_.begin(), rule_hits_.end());
  std::stable_sort(rules.begin(), rules.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (rules.size() > max_reported_rules) rules.resize(max_reported_rules);
  header(out, "mailgate_rule_hits_total", "counter", "Hits of the rules that hit most (at most 25 rules).");
  for (const auto& [rule, count] : rules)
    sample(out, "mailgate_rule_hits_total", "rule=\"" + labelValue(rule) + "\"", count);
  return out;
}

}  // namespace mailgate
