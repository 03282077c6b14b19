#include "gateway/logtool/log_summary.h"

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/logtool/ip_network.h"
#include "gateway/logtool/table_writer.h"
#include "gateway/util/ascii.h"

namespace mailgate::logtool {
namespace {

// The actions in the order people read them; others (from a newer gateway) follow by name.
constexpr std::array<std::string_view, 6> known_actions = {"accept", "tag", "tempfail", "reject", "abandoned", "none"};
constexpr std::size_t example_width = 60;

void count(TextCounts& counts, std::string_view key, uint64_t n = 1) {
  if (auto found = counts.find(key); found != counts.end()) found->second += n;
  else counts.emplace(std::string(key), n);
}

bool isCode(std::string_view word) {
  return word.size() == 3 && std::all_of(word.begin(), word.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// RFC 3463 §2: class.subject.detail.
bool isEnhancedCode(std::string_view word) {
  int dots = 0;
  for (char c : word) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 2 && !word.empty() && word.front() != '.' && word.back() != '.';
}

struct Ranked {
  std::string key;
  uint64_t count;
};

// Highest count first; equal counts by key, so the output does not depend on hashing.
std::vector<Ranked> ranked(const TextCounts& counts, std::size_t top) {
  std::vector<Ranked> list;
  list.reserve(counts.size());
  for (const auto& [key, n] : counts) list.push_back({key, n});
  std::sort(list.begin(), list.end(), [](const Ranked& a, const Ranked& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
  if (list.size() > top) list.resize(top);
  return list;
}

std::vector<std::string> actionColumns(const std::map<std::string, uint64_t, std::less<>>& actions) {
  std::vector<std::string> names;
  for (auto name : known_actions)
    if (actions.contains(name)) names.emplace_back(name);
  for (const auto& [name, n] : actions)
    if (std::find(known_actions.begin(), known_actions.end(), name) == known_actions.end()) names.push_back(name);
  return names;
}

std::string percent(uint64_t part, uint64_t whole) {
  char text[16];
  std::snprintf(text, sizeof text, "%5.1f%%", whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return text;
}

// "2026-12-07T14" → "2026-12-07 14:00"
std::string hourText(std::string_view hour) {
  std::string text(hour);
  if (text.size() == 13) text[10] = ' ';
  return text + ":00";
}

}  // namespace

std::string refusalKey(std::string_view stage, std::string_view reply) {
  std::string key(stage.empty() ? "-" : stage);
  auto [code, rest] = splitFirstWord(reply);
  if (!isCode(code)) return key + " (no reply code)";
  key += ' ';
  key += code;
  auto [enhanced, text] = splitFirstWord(rest);
  if (isEnhancedCode(enhanced)) {
    key += ' ';
    key += enhanced;
  }
  return key;
}

void LogSummary::add(const LogRecord& record, const Decision& decision) {
  if (record.type == "log_overflow") {
    ++overflow_records_;
    dropped_ += record.dropped;
    return;
  }
  ++records_;
  if (auto found = types_.find(record.type); found != types_.end()) ++found->second;
  else types_.emplace(std::string(record.type), 1);
  std::string_view action = record.action.empty() ? std::string_view("-") : record.action;
  if (auto found = actions_.find(action); found != actions_.end()) ++found->second;
  else actions_.emplace(std::string(action), 1);
  if (action == "reject" || action == "tempfail") {
    auto& refusal = refusals_[refusalKey(decision.stage, record.reply)];
    if (refusal.count++ == 0) refusal.example = std::string(record.reply);
  }
  if (record.has_sender) {
    auto at = record.sender.rfind('@');
    count(sender_domains_, record.sender.empty() ? std::string_view("<>")
                           : at == std::string_view::npos ? record.sender
                                                          : record.sender.substr(at + 1));
  }
  if (!record.client_ip.empty()) count(client_ips_, record.client_ip);
  for (auto rule : record.rules) count(rules_, rule);
  if (record.time.size() >= 13) {
    std::string_view hour = record.time.substr(0, 13);
    auto found = hours_.find(hour);
    if (found == hours_.end()) found = hours_.emplace(std::string(hour), std::map<std::string, uint64_t, std::less<>>{}).first;
    auto& by_action = found->second;
    if (auto slot = by_action.find(action); slot != by_action.end()) ++slot->second;
    else by_action.emplace(std::string(action), 1);
  }
}

void LogSummary::merge(const LogSummary& later) {
  records_ += later.records_;
  for (const auto& [type, n] : later.types_) types_[type] += n;
  for (const auto& [action, n] : later.actions_) actions_[action] += n;
  for (const auto& [key, refusal] : later.refusals_) {
    auto [slot, added] = refusals_.try_emplace(key, refusal);  // an earlier example stays
    if (!added) slot->second.count += refusal.count;
  }
  for (const auto& [domain, n] : later.sender_domains_) count(sender_domains_, domain, n);
  for (const auto& [ip, n] : later.client_ips_) count(client_ips_, ip, n);
  for (const auto& [rule, n] : later.rules_) count(rules_, rule, n);
  for (const auto& [hour, by_action] : later.hours_) {
    auto& mine = hours_[hour];
    for (const auto& [action, n] : by_action) mine[action] += n;
  }
  overflow_records_ += later.overflow_records_;
  dropped_ += later.dropped_;
}

TextCounts LogSummary::senderDomains() const {
  TextCounts folded;
  for (const auto& [domain, n] : sender_domains_) count(folded, asciiLower(domain), n);
  return folded;
}

TextCounts LogSummary::clientNetworks() const {
  TextCounts networks;
  for (const auto& [ip, n] : client_ips_) count(networks, summaryNetworkOf(ip), n);
  return networks;
}

void LogSummary::printText(std::FILE* out, std::size_t top) const {
  std::string types;
  for (const auto& [type, n] : types_) types += (types.empty() ? "" : ", ") + type + " " + std::to_string(n);
  std::fprintf(out, "Records: %llu%s%s%s\n", static_cast<unsigned long long>(records_), types.empty() ? "" : " (",
               types.c_str(), types.empty() ? "" : ")");

  std::fprintf(out, "\nBy action:\n");
  for (const auto& name : actionColumns(actions_)) {
    uint64_t n = actions_.find(name)->second;
    std::fprintf(out, "  %-10s %10llu  %s\n", name.c_str(), static_cast<unsigned long long>(n), percent(n, records_).c_str());
  }

  TextCounts refusal_counts;
  for (const auto& [key, refusal] : refusals_) refusal_counts.emplace(key, refusal.count);
  std::fprintf(out, "\nTop refusal reasons (deciding stage, reply code):\n");
  for (const auto& entry : ranked(refusal_counts, top))
    std::fprintf(out, "  %10llu  %-28s e.g. %s\n", static_cast<unsigned long long>(entry.count), entry.key.c_str(),
                 truncated(refusals_.at(entry.key).example, example_width).c_str());

  auto list = [&](const char* title, const TextCounts& counts) {
    std::fprintf(out, "\n%s:\n", title);
    for (const auto& entry : ranked(counts, top))
      std::fprintf(out, "  %10llu  %s\n", static_cast<unsigned long long>(entry.count), entry.key.c_str());
  };
  list("Top sender domains", senderDomains());
  list("Top client networks", clientNetworks());
  list("Top rules (hits)", rules_);

  std::fprintf(out, "\nPer hour (UTC):\n");
  auto names = actionColumns(actions_);
  std::string header = "  HOUR            ";
  for (const auto& name : names) header += "  " + std::string(std::max<std::size_t>(name.size(), 8) - name.size(), ' ') + name;
  std::fprintf(out, "%s     TOTAL\n", header.c_str());
  for (const auto& [hour, by_action] : hours_) {
    std::string row = "  " + hourText(hour);
    uint64_t total = 0;
    for (const auto& name : names) {
      auto found = by_action.find(name);
      uint64_t n = found == by_action.end() ? 0 : found->second;
      total += n;
      std::string number = std::to_string(n);
      row += "  " + std::string(std::max<std::size_t>(name.size(), 8) - number.size(), ' ') + number;
    }
    std::fprintf(out, "%s  %8llu\n", row.c_str(), static_cast<unsigned long long>(total));
  }

  if (overflow_records_ > 0)
    std::fprintf(out, "\nLog overflow: %llu records were dropped by the gateway (%llu log_overflow records)\n",
                 static_cast<unsigned long long>(dropped_), static_cast<unsigned long long>(overflow_records_));
  if (malformed_ > 0) std::fprintf(out, "\nMalformed lines skipped: %llu\n", static_cast<unsigned long long>(malformed_));
}

std::string LogSummary::json(std::size_t top) const {
  auto listed = [&](const TextCounts& counts, const char* name) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& entry : ranked(counts, top)) list.push_back({{name, entry.key}, {"count", entry.count}});
    return list;
  };
  TextCounts refusal_counts;
  for (const auto& [key, refusal] : refusals_) refusal_counts.emplace(key, refusal.count);
  nlohmann::json refusals = nlohmann::json::array();
  for (const auto& entry : ranked(refusal_counts, top))
    refusals.push_back({{"reason", entry.key}, {"count", entry.count}, {"example", refusals_.at(entry.key).example}});
  nlohmann::json hours = nlohmann::json::array();
  for (const auto& [hour, by_action] : hours_) {
    nlohmann::json row = {{"hour", hour + ":00Z"}};
    uint64_t total = 0;
    for (const auto& [action, n] : by_action) {
      row[action] = n;
      total += n;
    }
    row["total"] = total;
    hours.push_back(std::move(row));
  }
  nlohmann::json summary = {
      {"records", records_},
      {"types", types_},
      {"actions", actions_},
      {"refusal_reasons", std::move(refusals)},
      {"sender_domains", listed(senderDomains(), "domain")},
      {"client_networks", listed(clientNetworks(), "network")},
      {"rules", listed(rules_, "rule")},
      {"hours", std::move(hours)},
      {"log_overflow", {{"records", overflow_records_}, {"dropped", dropped_}}},
      {"malformed_lines", malformed_},
  };
  return summary.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mailgate::logtool
