#include "gateway/logtool/record_filter.h"

#include <algorithm>

#include "gateway/util/ascii.h"

namespace mailgate::logtool {
namespace {

template <class Values, class Test>
bool anyOf(const Values& values, Test test) {
  return values.empty() || std::any_of(values.begin(), values.end(), test);
}

}  // namespace

std::string_view withoutAngleBrackets(std::string_view text) {
  if (text.size() >= 2 && text.front() == '<' && text.back() == '>') return text.substr(1, text.size() - 2);
  return text;
}

bool RecordFilter::lineMatches(std::string_view line) const {
  return std::all_of(words.begin(), words.end(), [&](const auto& word) { return word.foundIn(line); });
}

bool RecordFilter::recordMatches(const LogRecord& record) const {
  if (since || until) {
    if (!record.time_ms) return false;
    if (since && *record.time_ms < *since) return false;
    if (until && *record.time_ms >= *until) return false;
  }
  if (!anyOf(actions, [&](const std::string& action) { return record.action == action; })) return false;
  if (!anyOf(senders, [&](const AddressPattern& pattern) { return record.has_sender && pattern.matches(record.sender); }))
    return false;
  if (!anyOf(recipients, [&](const AddressPattern& pattern) {
        return std::any_of(record.recipients.begin(), record.recipients.end(),
                           [&](const RecipientEntry& entry) { return pattern.matches(entry.address); });
      }))
    return false;
  if (!clients.empty()) {
    auto address = IpAddress::parse(record.client_ip);
    if (!address) return false;
    if (!anyOf(clients, [&](const IpNetwork& network) { return network.contains(*address); })) return false;
  }
  if (!anyOf(subjects, [&](const CaseInsensitiveNeedle& needle) {
        return !record.subject.empty() && needle.foundIn(record.subject);
      }))
    return false;
  if (!anyOf(message_ids, [&](const std::string& id) {
        return !record.message_id.empty() && withoutAngleBrackets(record.message_id) == id;
      }))
    return false;
  if (!anyOf(rules, [&](const std::string& rule) {
        return std::any_of(record.rules.begin(), record.rules.end(),
                           [&](std::string_view hit) { return equalsIgnoreCase(hit, rule); });
      }))
    return false;
  return true;
}

bool RecordFilter::decisionMatches(const Decision& decision) const {
  return anyOf(stages, [&](const std::string& stage) { return equalsIgnoreCase(decision.stage, stage); });
}

}  // namespace mailgate::logtool
