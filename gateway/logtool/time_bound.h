#pragma once
// Times as `mailgate log` compares them: milliseconds since the Unix epoch, UTC. Record times are
// DecisionLog::timestamp() ("2026-11-25T08:18:32.123Z"); --since and --until are written by
// people, relative ("2h") or absolute ("2026-12-07 14:00"), and always mean UTC like the log.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::logtool {

using EpochMs = int64_t;

// "2026-11-25T08:18:32.123Z", also with a space for the T, without seconds, the fraction or the
// Z, or with a "+02:00" offset; a date alone is its midnight. nullopt when it is none of these.
std::optional<EpochMs> parseAbsoluteTime(std::string_view text);

// --since / --until: "90s", "15m", "2h", "3d", "1w" or a sum like "1h30m" (that long before `now`),
// or an absolute time as parseAbsoluteTime() reads it.
std::expected<EpochMs, std::string> parseTimeBound(std::string_view text, EpochMs now);

EpochMs currentTime();

}  // namespace mailgate::logtool
