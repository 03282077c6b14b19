#include "gateway/logtool/line_reader.h"

#include <cstring>

#include "gateway/logtool/log_record.h"

namespace mailgate::logtool {

LineReader::LineReader(LogStream& stream) : stream_(stream), buffer_(2 * block_octets + RecordReader::padding_octets) {}

void LineReader::clear() {
  begin_ = end_ = scanned_ = 0;
  skipping_ = false;
}

std::expected<std::optional<std::string_view>, std::string> LineReader::next() {
  while (true) {
    if (const void* found = std::memchr(buffer_.data() + scanned_, '\n', end_ - scanned_)) {
      std::size_t newline = static_cast<const char*>(found) - buffer_.data();
      std::string_view line(buffer_.data() + begin_, newline - begin_);
      begin_ = scanned_ = newline + 1;
      if (skipping_) {
        skipping_ = false;
        continue;
      }
      if (line.size() > max_line_octets) {
        ++oversized_;
        continue;
      }
      return line;
    }
    scanned_ = end_;
    if (!skipping_ && end_ - begin_ > max_line_octets) {
      ++oversized_;
      skipping_ = true;
    }
    if (skipping_) begin_ = scanned_ = end_ = 0;
    // Make room: move the unfinished line to the front, or grow for a long one.
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      scanned_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.size() - RecordReader::padding_octets - end_ < block_octets)
      buffer_.resize(end_ + block_octets + RecordReader::padding_octets);
    auto got = stream_.read(buffer_.data() + end_, block_octets);
    if (!got) return std::unexpected(got.error());
    if (*got == 0) return std::optional<std::string_view>();
    end_ += *got;
  }
}

std::optional<std::string_view> LineReader::unterminated() {
  if (end_ - begin_ > max_line_octets) ++oversized_;
  if (skipping_ || begin_ == end_ || end_ - begin_ > max_line_octets) {
    skipping_ = false;
    begin_ = scanned_ = end_ = 0;
    return std::nullopt;
  }
  std::string_view line(buffer_.data() + begin_, end_ - begin_);
  begin_ = scanned_ = end_;
  return line;
}

}  // namespace mailgate::logtool
