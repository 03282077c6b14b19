#include "gateway/smtp/queue_id.h"

#include <string_view>
#include <vector>

#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

bool isQueueIdChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '.' ||
         c == '_' || c == '/' || c == '+' || c == '=';
}

std::string_view tokenAt(std::string_view text, std::size_t at) {
  std::size_t end = at;
  while (end < text.size() && isQueueIdChar(text[end])) ++end;
  std::string_view token = text.substr(at, end - at);
  // A sentence's full stop is not part of the id ("queued as ABC.").
  while (!token.empty() && token.back() == '.') token.remove_suffix(1);
  return token.size() <= max_queue_id_octets ? token : std::string_view();
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> found;
  std::size_t at = 0;
  while (at < text.size()) {
    while (at < text.size() && text[at] == ' ') ++at;
    std::size_t end = text.find(' ', at);
    if (end == std::string_view::npos) end = text.size();
    if (end > at) found.push_back(text.substr(at, end - at));
    at = end;
  }
  return found;
}

bool allQueueIdChars(std::string_view word) {
  if (word.empty() || word.size() > max_queue_id_octets) return false;
  for (char c : word)
    if (!isQueueIdChar(c)) return false;
  return true;
}

std::string_view queueIdIn(std::string_view line) {
  std::string lower = asciiLower(line);
  for (std::string_view marker : {"queued as ", "id="}) {
    std::size_t at = lower.find(marker);
    // "id=" only as a word of its own (not "uid=" or "msgid=" in a longer text).
    while (at != std::string::npos && marker == "id=" && at > 0 && lower[at - 1] != ' ') at = lower.find(marker, at + 1);
    if (at == std::string::npos) continue;
    std::string_view token = tokenAt(line, at + marker.size());
    if (!token.empty()) return token;
  }
  auto parts = words(line);
  // Sendmail and OpenSMTPD: the id first, then "Message accepted for delivery".
  if (parts.size() >= 2 && lower.find("message accepted") != std::string::npos && allQueueIdChars(parts[0]) &&
      asciiLower(parts[1]) == "message")
    return parts[0];
  // Dovecot LMTP: "<recipient> session-id Saved".
  if (parts.size() == 3 && parts[0].starts_with('<') && asciiLower(parts[2]) == "saved" && allQueueIdChars(parts[1]))
    return parts[1];
  return {};
}

}  // namespace

std::string queueIdOf(const Reply& reply) {
  if (reply.code() < 200 || reply.code() >= 300) return {};
  for (const auto& line : reply.lines()) {
    std::string_view id = queueIdIn(line);
    if (!id.empty()) return std::string(id);
  }
  return {};
}

}  // namespace mailgate
