#include "gateway/dns/answer_cache.h"

#include <algorithm>

namespace mailgate {

std::string AnswerCache::key(std::string_view name, uint16_t type) {
  // DNS names compare case-insensitively (RFC 4343); a final dot names the same node.
  std::string text(name);
  if (!text.empty() && text.back() == '.') text.pop_back();
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::to_string(type) + "/" + text;
}

std::optional<DnsRecordSet> AnswerCache::find(std::string_view name, uint16_t type, Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  auto found = entries_.find(key(name, type));
  if (found == entries_.end() || found->second.expires <= now) return std::nullopt;
  return found->second.answer;
}

void AnswerCache::store(std::string_view name, uint16_t type, const DnsRecordSet& answer, int ttl,
                        Clock::time_point now) {
  bool final_answer = answer.status == DnsStatus::Ok || answer.status == DnsStatus::NoData ||
                      answer.status == DnsStatus::NxDomain;
  if (!final_answer || ttl <= 0 || max_entries_ == 0) return;
  auto lifetime = std::min<std::chrono::seconds>(std::chrono::seconds(ttl), max_ttl);
  std::lock_guard lock(mutex_);
  if (entries_.size() >= max_entries_) {
    std::erase_if(entries_, [&](const auto& entry) { return entry.second.expires <= now; });
    if (entries_.size() >= max_entries_) entries_.clear();
  }
  entries_.insert_or_assign(key(name, type), Entry{answer, now + lifetime});
}

std::size_t AnswerCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace mailgate
