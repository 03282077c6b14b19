#pragma once
// The points of an SMTP session at which stages are asked (design.md §4), in the order they come.

#include <cstdint>

namespace mailgate {

enum class Phase : uint8_t { Connect, Helo, MailFrom, Rcpt, EndOfData };
using PhaseMask = uint32_t;
constexpr PhaseMask phaseBit(Phase phase) { return PhaseMask{1} << static_cast<unsigned>(phase); }
const char* phaseName(Phase phase);  // "connect", "helo", "mail", "rcpt", "data"

}  // namespace mailgate
