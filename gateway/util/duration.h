#pragma once
// Every timeout and delay in the gateway, in one unit: configuration durations ("30s", "5m")
// become milliseconds, the unit libuv's timers take.

#include <chrono>

namespace mailgate {

using Duration = std::chrono::milliseconds;

}  // namespace mailgate
