#pragma once
// Splits a LogStream into lines, reading in large blocks, with RecordReader::padding_octets
// readable after every line it hands out (no copy per line).

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/logtool/log_stream.h"

namespace mailgate::logtool {

class LineReader {
 public:
  // One read per megabyte: a 1 GiB log is a thousand read(2) calls.
  static constexpr std::size_t block_octets = 1024 * 1024;
  // A record is about a kilobyte; a "line" this long is a file that is not a decision log (or lost
  // its newlines): it is skipped as one malformed line rather than held in memory whole.
  static constexpr std::size_t max_line_octets = 16 * 1024 * 1024;

  explicit LineReader(LogStream& stream);

  // The next whole line, without its newline; nullopt at the end of what the stream has now (a
  // line not yet ended stays held: a writer may be in the middle of it). The view is valid until
  // the next call.
  std::expected<std::optional<std::string_view>, std::string> next();
  // At the real end: the last line when the file does not end with a newline, once.
  std::optional<std::string_view> unterminated();
  // Lines dropped for being longer than max_line_octets.
  std::size_t oversized() const { return oversized_; }
  // Forgets what is held (the file was truncated and is read again from its start).
  void clear();

 private:
  LogStream& stream_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t scanned_ = 0;  // [begin_, scanned_) holds no newline
  bool skipping_ = false;     // inside an oversized line, until its newline
  std::size_t oversized_ = 0;
};

}  // namespace mailgate::logtool
