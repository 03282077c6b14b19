#pragma once
// What a stage answers (design.md §4): Continue, Tag (headers and a score), TempFail or Reject
// (with the reply to send). The first TempFail or Reject ends the phase; Tags accumulate.

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "gateway/pipeline/phase.h"
#include "gateway/smtp/reply.h"

namespace mailgate {

struct HeaderField {
  std::string name;   // "Authentication-Results"
  std::string value;  // may be folded with CRLF + whitespace; no trailing CRLF
  // The message's own fields of this name are dropped at delivery: a rewritten Subject, or
  // X-Spam-* fields that only this gateway may vouch for. With an empty value, the field is only
  // removed, nothing added.
  bool replaces = false;
  bool removesOnly() const { return replaces && value.empty(); }
  std::string line() const { return name + ": " + value + "\r\n"; }
};

// One fact for the decision log, typed as the log writes it: counts and scores are JSON numbers
// and flags booleans, so that a reader compares them without parsing text.
class DetailValue {
 public:
  using Value = std::variant<std::string, bool, int64_t, double>;
  DetailValue(std::string text) : value_(std::move(text)) {}
  DetailValue(std::string_view text) : value_(std::string(text)) {}
  DetailValue(const char* text) : value_(std::string(text)) {}
  DetailValue(bool flag) : value_(flag) {}
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  DetailValue(T count) : value_(static_cast<int64_t>(count)) {}
  DetailValue(double number) : value_(number) {}

  const Value& value() const { return value_; }
  // As text ("7", "true", "2.5"), for people and tests.
  std::string text() const;
  bool operator==(const DetailValue&) const = default;

 private:
  Value value_;
};

using Details = std::vector<std::pair<std::string, DetailValue>>;

struct Verdict {
  enum class Kind { Continue, Tag, TempFail, Reject };

  Kind kind = Kind::Continue;
  Reply reply;                       // TempFail and Reject
  std::vector<HeaderField> headers;  // Continue and Tag: trace headers (Received-SPF, ...)
  double score = 0;                  // Tag: added to the message's score; others: logged only
  bool scored = false;               // the score means something even at 0 (it is always logged)
  std::string reason;                // for the decision log
  // Continue and Tag: "method=result props" entries for the one Authentication-Results header
  // (RFC 8601) that all stages share, e.g. "spf=pass smtp.mailfrom=example.com".
  std::vector<std::string> auth_results;
  // Structured facts for the decision log: ("identity", "mailfrom"), ("result", "fail"), ...
  Details details;
  // Facts that come as a list, e.g. one entry per DKIM signature: ("signatures", [{domain, ...}]).
  std::vector<std::pair<std::string, std::vector<Details>>> detail_lists;
  // TempFail and Reject decided at an early phase but answered at a later one (Postfix's
  // smtpd_delay_reject): a blocklisted client is refused at MAIL or RCPT rather than at the
  // greeting, so that the refusal is logged with the sender and recipients.
  std::optional<Phase> answer_at;

  static Verdict proceed(std::string reason = {}) { return {Kind::Continue, {}, {}, 0, false, std::move(reason), {}, {}, {}, {}}; }
  static Verdict tag(std::vector<HeaderField> headers, double score, std::string reason) {
    return {Kind::Tag, {}, std::move(headers), score, false, std::move(reason), {}, {}, {}, {}};
  }
  static Verdict tempFail(Reply reply, std::string reason) {
    return {Kind::TempFail, std::move(reply), {}, 0, false, std::move(reason), {}, {}, {}, {}};
  }
  static Verdict reject(Reply reply, std::string reason) {
    return {Kind::Reject, std::move(reply), {}, 0, false, std::move(reason), {}, {}, {}, {}};
  }

  bool ends() const { return kind == Kind::TempFail || kind == Kind::Reject; }
};

const char* kindName(Verdict::Kind kind);  // "continue", "tag", "tempfail", "reject"


}  // namespace mailgate
