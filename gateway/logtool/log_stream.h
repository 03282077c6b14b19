#pragma once
// The bytes of one decision log: a plain file, a gzip-rotated one (logrotate's `compress`) or
// standard input, told apart by the gzip magic (RFC 1952 §2.3.1), not by the file's name.

#include <cstddef>
#include <expected>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include <zlib.h>

#include "gateway/util/file_descriptor.h"

namespace mailgate::logtool {

class LogStream {
 public:
  // Compressed input is read in blocks of this size: one read(2) and one inflate() call per block.
  static constexpr std::size_t compressed_block_octets = 256 * 1024;

  // "-" is standard input; anything else is opened read-only.
  static std::expected<std::unique_ptr<LogStream>, std::string> open(const std::string& path);
  ~LogStream();
  LogStream(const LogStream&) = delete;
  LogStream& operator=(const LogStream&) = delete;

  // Up to `size` octets of the log's text; 0 at the end of what is there now (a plain file that is
  // still being written may have more later: --follow reads again).
  std::expected<std::size_t, std::string> read(char* out, std::size_t size);

  const std::string& name() const { return name_; }
  bool compressed() const { return gzip_; }
  int fd() const { return fd_.get(); }
  // Octets of the file consumed so far (compressed octets for a gzip file).
  off_t offset() const { return offset_; }
  // Reads from the start again after the file was truncated in place (logrotate's copytruncate).
  void rewind();

 private:
  LogStream(FileDescriptor fd, std::string name);
  std::expected<std::size_t, std::string> readRaw(char* out, std::size_t size);
  std::expected<std::size_t, std::string> inflateInto(char* out, std::size_t size);

  struct InflateEnd {
    void operator()(z_stream* stream) const noexcept;
  };

  FileDescriptor fd_;
  std::string name_;
  off_t offset_ = 0;
  bool sniffed_ = false;
  bool gzip_ = false;
  bool member_ended_ = false;  // the last gzip member ended; more input means another member
  std::vector<char> raw_;      // read but not yet consumed
  std::size_t raw_begin_ = 0;
  std::size_t raw_end_ = 0;
  std::unique_ptr<z_stream, InflateEnd> inflater_;
};

}  // namespace mailgate::logtool
