#pragma once
// An allow-list match (the lists stage's `allow`): the refusals that later stages ask for are
// logged, with who allowed them, but not given. An allowance for the client or its HELO holds for
// the session (it lives in the session's scratch); one for the sender or a recipient, for the
// transaction. It covers every stage, or only the stages the operator named.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate {

struct Allowance {
  bool granted = false;
  std::string by;                    // "lists: from:partner.example", for the record
  std::vector<std::string> stages;   // the stages whose refusals it skips; empty: every stage

  bool covers(std::string_view stage) const {
    return granted && (stages.empty() || std::find(stages.begin(), stages.end(), stage) != stages.end());
  }
};

}  // namespace mailgate
