#include "gateway/logtool/log_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mailgate::logtool {
namespace {

// RFC 1952 §2.3.1: ID1 ID2.
constexpr unsigned char gzip_magic[2] = {0x1f, 0x8b};
// inflateInit2's windowBits: 15 (the largest window, what gzip writes) + 16 (gzip wrapper only).
constexpr int gzip_window_bits = 15 + 16;

std::string systemError(const std::string& name, int error) { return name + ": " + std::strerror(error); }

}  // namespace

void LogStream::InflateEnd::operator()(z_stream* stream) const noexcept {
  inflateEnd(stream);
  delete stream;
}

LogStream::LogStream(FileDescriptor fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
LogStream::~LogStream() = default;

std::expected<std::unique_ptr<LogStream>, std::string> LogStream::open(const std::string& path) {
  if (path == "-") return std::unique_ptr<LogStream>(new LogStream(FileDescriptor(::dup(STDIN_FILENO)), "(standard input)"));
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return std::unexpected(systemError(path, errno));
  return std::unique_ptr<LogStream>(new LogStream(std::move(fd), path));
}

std::expected<std::size_t, std::string> LogStream::readRaw(char* out, std::size_t size) {
  while (true) {
    ssize_t got = ::read(fd_.get(), out, size);
    if (got >= 0) {
      offset_ += got;
      return static_cast<std::size_t>(got);
    }
    if (errno != EINTR) return std::unexpected(systemError(name_, errno));
  }
}

void LogStream::rewind() {
  ::lseek(fd_.get(), 0, SEEK_SET);
  offset_ = 0;
  sniffed_ = false;
  gzip_ = false;
  raw_begin_ = raw_end_ = 0;
  inflater_.reset();
}

std::expected<std::size_t, std::string> LogStream::read(char* out, std::size_t size) {
  if (!sniffed_) {
    raw_.resize(compressed_block_octets);
    // Two octets decide; a plain log shorter than that is read as plain.
    while (raw_end_ < sizeof gzip_magic) {
      auto got = readRaw(raw_.data() + raw_end_, raw_.size() - raw_end_);
      if (!got) return std::unexpected(got.error());
      if (*got == 0) break;
      raw_end_ += *got;
    }
    if (raw_end_ < sizeof gzip_magic) return 0;  // nothing yet; decide when more comes
    sniffed_ = true;
    gzip_ = std::memcmp(raw_.data(), gzip_magic, sizeof gzip_magic) == 0;
    if (gzip_) {
      inflater_.reset(new z_stream{});
      if (inflateInit2(inflater_.get(), gzip_window_bits) != Z_OK) {
        inflater_.reset();
        return std::unexpected(name_ + ": zlib could not start");
      }
    }
  }
  if (gzip_) return inflateInto(out, size);
  if (raw_begin_ < raw_end_) {
    std::size_t count = std::min(size, raw_end_ - raw_begin_);
    std::memcpy(out, raw_.data() + raw_begin_, count);
    raw_begin_ += count;
    return count;
  }
  return readRaw(out, size);
}

std::expected<std::size_t, std::string> LogStream::inflateInto(char* out, std::size_t size) {
  z_stream& stream = *inflater_;
  stream.next_out = reinterpret_cast<Bytef*>(out);
  stream.avail_out = static_cast<uInt>(size);
  while (stream.avail_out == size) {
    if (raw_begin_ == raw_end_) {
      auto got = readRaw(raw_.data(), raw_.size());
      if (!got) return std::unexpected(got.error());
      if (*got == 0) {
        if (member_ended_) return 0;
        return std::unexpected(name_ + ": the gzip stream ends early (the file is cut short)");
      }
      raw_begin_ = 0;
      raw_end_ = *got;
    }
    if (member_ended_) {
      // RFC 1952 §2.2: a gzip file is a series of members; `cat a.gz b.gz` is one log.
      inflateReset(&stream);
      member_ended_ = false;
    }
    stream.next_in = reinterpret_cast<Bytef*>(raw_.data() + raw_begin_);
    stream.avail_in = static_cast<uInt>(raw_end_ - raw_begin_);
    int status = inflate(&stream, Z_NO_FLUSH);
    raw_begin_ = raw_end_ - stream.avail_in;
    if (status == Z_STREAM_END) member_ended_ = true;
    else if (status != Z_OK && status != Z_BUF_ERROR)
      return std::unexpected(name_ + ": corrupt gzip data (" + (stream.msg ? stream.msg : "zlib error") + ")");
  }
  return size - stream.avail_out;
}

}  // namespace mailgate::logtool
