#pragma once
// Who decided a record's outcome, for the table's STAGE and REASON columns, --stage and the
// summary's refusal reasons.

#include <string>
#include <string_view>

#include "gateway/logtool/log_record.h"

namespace mailgate::logtool {

struct Decision {
  std::string_view stage;  // a stage's name, or "smtp", "downstream", "log"
  std::string reason;
};

// The stage whose verdict is the record's action (the first enforcing stage that refused with the
// reply the client heard, else the first tagging one); "downstream" when the reply is the
// downstream's own; "smtp" when the protocol decided (a refused command, relay denied at RCPT,
// a client that left); "log" for a log_overflow record.
Decision decisionOf(const LogRecord& record);

}  // namespace mailgate::logtool
