#include "gateway/relay/trace_header.h"

#include <ctime>
#include <initializer_list>
#include <string_view>

namespace mailgate {
namespace {

// A HELO argument is client data: keep it from breaking the header (RFC 5322 §3.2): no CR, LF or
// controls, no parenthesis to open or close a comment, no '"' to open a quoted-string that would
// swallow the rest of the field, no backslash to quote the character after it.
std::string headerSafe(std::string_view text) {
  text = text.substr(0, max_trace_helo_octets);
  std::string out;
  for (unsigned char c : text) {
    bool special = c == '(' || c == ')' || c == '"' || c == '\\';
    out += (c < 0x21 || c >= 0x7f || special) ? '?' : static_cast<char>(c);
  }
  return out.empty() ? std::string("unknown") : out;
}

// RFC 5322 §2.1.1: a header line SHOULD be at most 78 octets (and MUST be at most 998); §2.2.3:
// a field folds only where there is whitespace, so a token is never split, and each clause of
// the Received: field ("from ...", "by ...", "for ...") starts a line of its own, as Postfix
// writes it.
class FoldedField {
 public:
  static constexpr std::size_t preferred_line_octets = 78;

  // Starts a new line (the first one holds the field name) and appends `tokens`, folding
  // before a token that would carry the line past 78 octets.
  void clause(std::initializer_list<std::string_view> tokens) {
    if (!text_.empty()) {
      text_ += "\r\n\t";
      line_octets_ = 1;
      line_empty_ = true;
    }
    for (std::string_view token : tokens) append(token);
  }
  void append(std::string_view token) {
    if (!line_empty_ && line_octets_ + 1 + token.size() > preferred_line_octets) {
      text_ += "\r\n\t";
      line_octets_ = 1;
    } else if (!line_empty_) {
      text_ += ' ';
      ++line_octets_;
    }
    text_ += token;
    line_octets_ += token.size();
    line_empty_ = false;
  }
  std::string finish() { return std::move(text_) + "\r\n"; }

 private:
  std::string text_;
  std::size_t line_octets_ = 0;
  bool line_empty_ = true;
};

}  // namespace

std::string rfc5322Date(std::chrono::system_clock::time_point time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[utc.tm_wday], utc.tm_mday,
                months[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
  return text;
}

std::string receivedHeader(const TraceInfo& trace) {
  FoldedField field;
  field.clause({"Received: from " + headerSafe(trace.helo), "([" + trace.client_ip + "])"});
  std::string id = "id " + trace.id + (trace.recipients.size() == 1 ? "" : ";");
  field.clause({"by " + trace.hostname, "(mailgate)", std::string("with ") + (trace.esmtp ? "ESMTP" : "SMTP"), id});
  if (trace.recipients.size() == 1) field.clause({"for " + trace.recipients[0].bracketed() + ";"});
  field.append(rfc5322Date(trace.time));
  return field.finish();
}

}  // namespace mailgate
