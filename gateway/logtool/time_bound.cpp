#include "gateway/logtool/time_bound.h"

#include <chrono>

namespace mailgate::logtool {
namespace {

constexpr EpochMs ms_per_second = 1000;
constexpr EpochMs ms_per_minute = 60 * ms_per_second;
constexpr EpochMs ms_per_hour = 60 * ms_per_minute;
constexpr EpochMs ms_per_day = 24 * ms_per_hour;

// Reads exactly `count` digits at `pos`; nullopt when they are not all digits.
std::optional<int> digits(std::string_view text, std::size_t& pos, std::size_t count) {
  if (pos + count > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += count;
  return value;
}

bool take(std::string_view text, std::size_t& pos, char expected) {
  if (pos >= text.size() || text[pos] != expected) return false;
  ++pos;
  return true;
}

// "Z", "+02:00", "-0530" or nothing: the offset to subtract to get UTC.
std::optional<EpochMs> offset(std::string_view text, std::size_t& pos) {
  if (pos == text.size()) return 0;
  if (take(text, pos, 'Z') || take(text, pos, 'z')) return 0;
  int sign = text[pos] == '+' ? 1 : text[pos] == '-' ? -1 : 0;
  if (sign == 0) return std::nullopt;
  ++pos;
  auto hours = digits(text, pos, 2);
  take(text, pos, ':');
  auto minutes = digits(text, pos, 2);
  if (!hours || !minutes || *hours > 23 || *minutes > 59) return std::nullopt;
  return sign * (*hours * ms_per_hour + *minutes * ms_per_minute);
}

}  // namespace

std::optional<EpochMs> parseAbsoluteTime(std::string_view text) {
  std::size_t pos = 0;
  auto year = digits(text, pos, 4);
  if (!year || !take(text, pos, '-')) return std::nullopt;
  auto month = digits(text, pos, 2);
  if (!month || !take(text, pos, '-')) return std::nullopt;
  auto day = digits(text, pos, 2);
  if (!day) return std::nullopt;
  std::chrono::year_month_day date{std::chrono::year{*year}, std::chrono::month{static_cast<unsigned>(*month)},
                                   std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok()) return std::nullopt;
  EpochMs result = std::chrono::sys_days{date}.time_since_epoch().count() * ms_per_day;
  if (pos == text.size()) return result;
  if (!take(text, pos, 'T') && !take(text, pos, 't') && !take(text, pos, ' ')) return std::nullopt;
  auto hour = digits(text, pos, 2);
  if (!hour || !take(text, pos, ':')) return std::nullopt;
  auto minute = digits(text, pos, 2);
  if (!minute || *hour > 23 || *minute > 59) return std::nullopt;
  result += *hour * ms_per_hour + *minute * ms_per_minute;
  if (take(text, pos, ':')) {
    auto second = digits(text, pos, 2);
    if (!second || *second > 60) return std::nullopt;  // 60: a leap second, as RFC 3339 §5.6 allows
    result += *second * ms_per_second;
    if (take(text, pos, '.')) {
      // Milliseconds from the first three digits; further digits are finer than the log keeps.
      EpochMs scale = 100;
      std::size_t first = pos;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        if (scale > 0) result += (text[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == first) return std::nullopt;
    }
  }
  auto shift = offset(text, pos);
  if (!shift || pos != text.size()) return std::nullopt;
  return result - *shift;
}

std::expected<EpochMs, std::string> parseTimeBound(std::string_view text, EpochMs now) {
  if (auto absolute = parseAbsoluteTime(text)) return *absolute;
  EpochMs span = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    EpochMs count = 0;
    std::size_t first = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - first < 9) count = count * 10 + (text[pos++] - '0');
    if (pos == first || pos == text.size()) break;
    EpochMs unit = 0;
    switch (text[pos++]) {
      case 's': unit = ms_per_second; break;
      case 'm': unit = ms_per_minute; break;
      case 'h': unit = ms_per_hour; break;
      case 'd': unit = ms_per_day; break;
      case 'w': unit = 7 * ms_per_day; break;
      default: unit = 0;
    }
    if (unit == 0) break;
    span += count * unit;
    if (pos == text.size()) return now - span;
  }
  return std::unexpected("'" + std::string(text) +
                         "' is not a time: give a span before now (30m, 2h, 1d, 1w, 1h30m) or a UTC time "
                         "(2026-12-07, \"2026-12-07 14:00\", 2026-12-07T14:00:00Z)");
}

EpochMs currentTime() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace mailgate::logtool
