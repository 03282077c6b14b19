#pragma once
// Looks at the files a message carries, one at a time, and what is inside those that are
// archives: each file's normalised name against the `block` globs, its declared type and the type
// libmagic detects from its content against the `block_types` globs, and for zip, 7z, rar, tar
// and gzip/bzip2/xz (libarchive) every entry the same way, nested archives too, within bounds.
// An encrypted archive or entry, and an archive past the bounds or unreadable, is reported as
// such: what it holds is unknown. Runs on the thread pool (CPU work); one inspector per message.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate {

struct AttachmentFinding {
  enum class Kind { Blocked, Encrypted, Unchecked };
  Kind kind = Kind::Blocked;
  std::string name;  // the file's name; inside an archive "outer.zip/inner.zip/run.exe"
  std::string why;   // "name matches *.exe", "type application/x-executable", ...
};

struct AttachmentRules {
  std::vector<std::string> block;        // file-name globs
  std::vector<std::string> block_types;  // MIME type globs, declared or detected
};

class AttachmentInspector {
 public:
  // Archives inside archives are opened this deep (an attachment is at depth 0): "a zip in a zip"
  // is 2. Deeper nesting has no use but hiding; it is reported as unchecked.
  static constexpr int max_archive_depth = 5;
  // Entries looked at in all archives of one message (a zip of 100 000 empty files costs this).
  static constexpr std::size_t max_archive_entries = 10'000;
  // Octets unpacked from all archives of one message: a zip bomb stops here.
  static constexpr uint64_t max_unpacked_octets = 100 * 1024 * 1024;
  // libmagic is given the first octets only: the formats blocked by type announce themselves at
  // the start (an ELF or MZ header, a PE header within the first KiB), and soft magic entries that
  // search the buffer cost time in proportion to it.
  static constexpr std::size_t magic_octets = 64 * 1024;

  explicit AttachmentInspector(const AttachmentRules& rules) : rules_(rules) {}

  // One file of the message: its decoded name (may be empty), its declared MIME type (may be
  // empty) and its content with the transfer encoding undone.
  void inspect(std::string_view name, std::string_view declared_type, std::string_view content);

  const std::vector<AttachmentFinding>& findings() const { return findings_; }
  bool blocked() const;
  std::size_t filesInspected() const { return files_; }

  // The type libmagic finds in `content` ("application/zip"); empty when it cannot tell.
  static std::string detectedType(std::string_view content);

 private:
  void inspectFile(const std::string& path, std::string_view name, std::string_view declared_type,
                   std::string_view content, int depth);
  void inspectArchive(const std::string& path, std::string_view name, std::string_view content, int depth);
  std::string blockedName(std::string_view name) const;
  std::string blockedType(std::string_view type) const;
  void add(AttachmentFinding::Kind kind, std::string name, std::string why);

  const AttachmentRules& rules_;
  std::vector<AttachmentFinding> findings_;
  std::size_t files_ = 0;
  std::size_t entries_ = 0;
  uint64_t unpacked_ = 0;
};

}  // namespace mailgate
