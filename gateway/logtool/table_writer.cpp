#include "gateway/logtool/table_writer.h"

#include <algorithm>

namespace mailgate::logtool {
namespace {

struct Column {
  const char* title;
  std::size_t cap;       // widest it gets unless --wide
  std::size_t fallback;  // its width when the first batch was empty (--follow)
};

// Caps: a client address is never cut (39: the longest IPv6 text); the rest keeps a row within
// about 230 columns, a maximised terminal on a laptop screen.
constexpr std::array<Column, TableWriter::column_count> columns = {{
    {"TIME", 19, 19},
    {"CLIENT", 39, 15},
    {"SENDER", 32, 24},
    {"RECIPIENTS", 32, 24},
    {"ACTION", 9, 8},
    {"REPLY", 48, 32},
    {"STAGE", 12, 10},
    {"REASON", 60, 60},
}};
constexpr std::string_view gap = "  ";
constexpr std::string_view ellipsis = "…";

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Control characters would break the row (a newline in a reason): shown as spaces.
std::string printable(std::string_view text) {
  std::string result(text);
  for (char& c : result)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return result;
}

std::string orDash(std::string_view text) { return text.empty() ? "-" : printable(text); }

// "2026-11-25T08:18:32.123Z" → "2026-11-25 08:18:32" (UTC, to the second).
std::string timeCell(std::string_view time) {
  if (time.size() < 19 || time[10] != 'T') return orDash(time);
  std::string cell(time.substr(0, 19));
  cell[10] = ' ';
  return cell;
}

std::string senderCell(const LogRecord& record) {
  if (!record.has_sender) return "-";
  return record.sender.empty() ? "<>" : printable(record.sender);
}

}  // namespace

std::size_t displayWidth(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) { return !continuation(c); }));
}

std::string truncated(std::string_view text, std::size_t width) {
  if (displayWidth(text) <= width) return std::string(text);
  if (width == 0) return {};
  std::size_t kept = 0, end = 0;
  while (end < text.size()) {
    std::size_t next = end + 1;
    while (next < text.size() && continuation(static_cast<unsigned char>(text[next]))) ++next;
    if (kept + 1 >= width) break;
    ++kept;
    end = next;
  }
  return std::string(text.substr(0, end)) + std::string(ellipsis);
}

TableWriter::TableWriter(std::FILE* out, bool wide) : out_(out), wide_(wide) {}

TableRow tableRow(const LogRecord& record, const Decision& decision, bool wide) {
  TableRow row;
  row[0] = timeCell(record.time);
  row[1] = orDash(record.client_ip);
  row[2] = senderCell(record);
  if (record.recipients.empty()) {
    row[3] = "-";
  } else {
    // The first recipient and how many more: "+2" must survive a cut, so it is cut first.
    std::string more = record.recipients.size() > 1 ? " +" + std::to_string(record.recipients.size() - 1) : "";
    std::string first = printable(record.recipients.front().address);
    if (!wide && displayWidth(first) + more.size() > columns[3].cap)
      first = truncated(first, columns[3].cap - std::min(more.size(), columns[3].cap));
    row[3] = first + more;
  }
  row[4] = orDash(record.action);
  row[5] = orDash(record.reply);
  row[6] = orDash(decision.stage);
  row[7] = printable(decision.reason);
  return row;
}

void TableWriter::add(TableRow row) {
  ++rows_;
  if (measured_) {
    print(row);
    return;
  }
  held_.push_back(std::move(row));
  if (held_.size() >= batch_rows) flush();
}

void TableWriter::measure() {
  for (std::size_t i = 0; i < column_count; ++i) {
    std::size_t width = displayWidth(columns[i].title);
    if (held_.empty()) width = std::max(width, columns[i].fallback);
    for (const auto& row : held_) width = std::max(width, displayWidth(row[i]));
    widths_[i] = wide_ ? width : std::min(width, columns[i].cap);
  }
  measured_ = true;
}

void TableWriter::flush(bool header_anyway) {
  if (!measured_) {
    if (held_.empty() && !header_anyway) return;
    measure();
    Row header;
    for (std::size_t i = 0; i < column_count; ++i) header[i] = columns[i].title;
    print(header);
  }
  for (const auto& row : held_) print(row);
  held_.clear();
}

void TableWriter::print(const Row& row) {
  std::string line;
  for (std::size_t i = 0; i < column_count; ++i) {
    std::string cell = wide_ ? row[i] : truncated(row[i], i + 1 == column_count ? columns[i].cap : widths_[i]);
    line += cell;
    if (i + 1 == column_count) break;
    std::size_t width = displayWidth(cell);
    if (width < widths_[i]) line.append(widths_[i] - width, ' ');
    line += gap;
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), out_);
}

}  // namespace mailgate::logtool
