#include "gateway/spool/spool.h"

#include <atomic>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "gateway/util/file_descriptor.h"

namespace mailgate {

namespace {


std::string failure(std::string_view step, const std::string& directory, int error) {
  return std::string(step) + " in spool directory " + directory + ": " + std::strerror(error);
}

// An unnamed file vanishes with its last descriptor, so a crash or a dropped connection leaves
// nothing behind in the spool directory.
std::expected<FileDescriptor, std::string> openUnnamedFile(const std::string& directory) {
  FileDescriptor file(::open(directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (file.get() >= 0) return file;
  int error = errno;
  // These are how a kernel or filesystem without O_TMPFILE refuses it (open(2), "O_TMPFILE").
  if (error != EOPNOTSUPP && error != EISDIR && error != EINVAL) {
    return std::unexpected(failure("creating the spool file", directory, error));
  }
  std::string name = directory + "/mailgate-spool-XXXXXX";
  FileDescriptor named(::mkostemp(name.data(), O_CLOEXEC));
  if (named.get() < 0) return std::unexpected(failure("creating the spool file", directory, errno));
  // Unlinked at once: the window in which a crash leaves a file behind is as short as it can be.
  if (::unlink(name.c_str()) != 0) return std::unexpected(failure("unlinking the spool file", directory, errno));
  return named;
}

// Writes at an explicit offset rather than the file position, so that the bytes of an append that
// failed halfway are overwritten by the next one instead of staying in the content.
int writeAll(int fd, std::string_view bytes, uint64_t offset) {
  while (!bytes.empty()) {
    ssize_t written = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
    offset += static_cast<uint64_t>(written);
  }
  return 0;
}

}  // namespace

namespace {
// Every spool's size, for the metrics endpoint's gauge (read from another thread).
std::atomic<uint64_t> held_bytes{0};
}  // namespace

uint64_t Spool::bytesHeld() { return held_bytes.load(std::memory_order_relaxed); }

Spool::Spool(std::string directory, uint64_t memory_limit)
    : directory_(std::move(directory)), memory_limit_(memory_limit) {}

Spool::~Spool() { clear(); }

Spool::Spool(Spool&& other) noexcept
    : directory_(std::move(other.directory_)),
      memory_limit_(other.memory_limit_),
      memory_(std::move(other.memory_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(std::exchange(other.size_, 0)) {}

Spool& Spool::operator=(Spool&& other) noexcept {
  if (this != &other) {
    clear();
    directory_ = std::move(other.directory_);
    memory_limit_ = other.memory_limit_;
    memory_ = std::move(other.memory_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

std::expected<void, std::string> Spool::append(std::string_view bytes) {
  if (!onDisk() && size_ + bytes.size() <= memory_limit_) {
    growMemory(bytes.size());
    memory_.append(bytes);
    size_ += bytes.size();
    held_bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
    return {};
  }
  if (!onDisk()) {
    if (auto moved = moveToFile(); !moved) return moved;
  }
  if (int error = writeAll(fd_, bytes, size_); error != 0) {
    return std::unexpected(failure("writing the spool file", directory_, error));
  }
  size_ += bytes.size();
  held_bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
  return {};
}

// std::string doubles its capacity as it grows, which could hold twice the limit; a fresh string
// reserved from empty gets the capacity asked for, so memory_ never holds more than the limit.
void Spool::growMemory(std::size_t more) {
  std::size_t needed = memory_.size() + more;
  if (needed <= memory_.capacity()) return;
  std::size_t wanted = std::max(needed, 2 * memory_.capacity());
  std::string grown;
  grown.reserve(static_cast<std::size_t>(std::min<uint64_t>(wanted, memory_limit_)));
  grown.append(memory_);
  memory_.swap(grown);
}

std::expected<void, std::string> Spool::moveToFile() {
  auto file = openUnnamedFile(directory_);
  if (!file) return std::unexpected(file.error());
  if (int error = writeAll(file->get(), memory_, 0); error != 0) {
    return std::unexpected(failure("writing the spool file", directory_, error));
  }
  fd_ = file->release();
  std::string().swap(memory_);  // clear() alone keeps the capacity
  return {};
}

std::expected<std::string, std::string> Spool::readPrefix(uint64_t limit, bool header_only) const {
  constexpr std::size_t piece = 16 * 1024;
  std::string text;
  uint64_t wanted = std::min(limit, size_);
  while (text.size() < wanted) {
    std::size_t before = text.size();
    text.resize(before + static_cast<std::size_t>(std::min<uint64_t>(piece, wanted - before)));
    auto count = read(before, text.data() + before, text.size() - before);
    if (!count) return std::unexpected(count.error());
    text.resize(before + *count);
    if (*count == 0) break;
    // Look for the empty line in what is new, and in the three octets before it that a CRLFCRLF
    // may straddle.
    std::string_view fresh = std::string_view(text).substr(before < 3 ? 0 : before - 3);
    if (header_only && (fresh.find("\r\n\r\n") != std::string_view::npos || fresh.find("\n\n") != std::string_view::npos ||
                        text.starts_with("\r\n")))
      break;
  }
  return text;
}

std::expected<std::size_t, std::string> Spool::read(uint64_t offset, char* buffer, std::size_t length) const {
  if (offset >= size_) return 0;
  length = static_cast<std::size_t>(std::min<uint64_t>(length, size_ - offset));
  if (!onDisk()) {
    std::memcpy(buffer, memory_.data() + offset, length);
    return length;
  }
  std::size_t copied = 0;
  while (copied < length) {
    ssize_t got = ::pread(fd_, buffer + copied, length - copied, static_cast<off_t>(offset + copied));
    if (got < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(failure("reading the spool file", directory_, errno));
    }
    // The file holds at least size_ bytes unless something outside the spool truncated it.
    if (got == 0) return std::unexpected(failure("reading the spool file", directory_, EIO));
    copied += static_cast<std::size_t>(got);
  }
  return copied;
}

void Spool::clear() {
  std::string().swap(memory_);
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  held_bytes.fetch_sub(std::exchange(size_, 0), std::memory_order_relaxed);
}

}  // namespace mailgate
