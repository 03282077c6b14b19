#pragma once
// Holds one message while it arrives: in memory up to a limit, then in an unlinked temporary file
// in the spool directory, so a 50 MiB message costs the memory limit, not 50 MiB. The spool knows
// no connection; it is filled on the event loop and may be read on the thread pool (never both
// at once).

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace mailgate {

// How much of a message is read to find its header fields (forged Authentication-Results, the
// From: of DMARC): a header section longer than this is scanned no further.
constexpr uint64_t max_header_scan_octets = 1024 * 1024;

class Spool {
 public:
  // `directory` must exist and be writable; `memory_limit` bytes stay in memory before the
  // content moves to a file there.
  Spool(std::string directory, uint64_t memory_limit);
  ~Spool();
  Spool(Spool&&) noexcept;
  Spool& operator=(Spool&&) noexcept;
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends bytes; moves to a file once the memory limit would be passed. The error says why
  // (disk full, directory missing); the message must then be refused with a 4xx. A failed append
  // leaves size() as it was.
  std::expected<void, std::string> append(std::string_view bytes);
  uint64_t size() const { return size_; }
  // What all spools of the process hold now (memory and files), for the metrics endpoint.
  static uint64_t bytesHeld();
  bool onDisk() const { return fd_ >= 0; }

  // Copies up to `length` bytes from `offset` into `buffer`; returns the count (0 at the end).
  std::expected<std::size_t, std::string> read(uint64_t offset, char* buffer,
                                               std::size_t length) const;
  // The first `limit` octets (fewer when the content is shorter). With `header_only`, reading
  // stops once the empty line that ends the header section is in (the text may go a little past
  // it), so a stage that wants the header of a large message does not read its body.
  std::expected<std::string, std::string> readPrefix(uint64_t limit, bool header_only = false) const;
  // The whole content while it is still in memory (empty view once it is on disk).
  std::string_view memory() const { return onDisk() ? std::string_view() : std::string_view(memory_); }

  // Forgets the content (next transaction): frees the memory and closes the file.
  void clear();

 private:
  std::expected<void, std::string> moveToFile();
  void growMemory(std::size_t more);

  std::string directory_;
  uint64_t memory_limit_;
  std::string memory_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace mailgate
