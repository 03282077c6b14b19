#include "gateway/relay/trace_header.h"

#include <ctime>

namespace mailgate {
namespace {

// A HELO argument is client data: keep it from breaking the header (RFC 5322 §3.2): no CR, LF or
// controls, no parenthesis to open or close a comment, no '"' to open a quoted-string that would
// swallow the rest of the field, no backslash to quote the character after it.
std::string headerSafe(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    bool special = c == '(' || c == ')' || c == '"' || c == '\\';
    out += (c < 0x21 || c >= 0x7f || special) ? '?' : static_cast<char>(c);
  }
  return out.empty() ? std::string("unknown") : out;
}

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
  std::string header = "Received: from " + headerSafe(trace.helo) + " ([" + trace.client_ip + "])\r\n";
  header += "\tby " + trace.hostname + " (mailgate) with " + (trace.esmtp ? "ESMTP" : "SMTP") + " id " + trace.id;
  if (trace.recipients.size() == 1) header += "\r\n\tfor " + trace.recipients[0].bracketed();
  header += "; " + rfc5322Date(trace.time) + "\r\n";
  return header;
}

}  // namespace mailgate
