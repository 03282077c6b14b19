#include "filters/attachments/attachment_inspector.h"

#include <algorithm>
#include <array>

#include "filters/attachments/attachment_name.h"
#include "gateway/c/libarchive.h"
#include "gateway/c/libmagic.h"
#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

// Types libarchive is asked to open. Office documents are zip files too, but their parts are
// the document's own (their macros are found by type, not by unpacking).
using namespace std::string_view_literals;
constexpr std::array archive_types = {
    "application/zip"sv, "application/x-zip-compressed"sv, "application/java-archive"sv,
    "application/x-7z-compressed"sv, "application/x-rar"sv, "application/vnd.rar"sv, "application/x-tar"sv,
    "application/gzip"sv, "application/x-gzip"sv, "application/x-bzip2"sv, "application/x-xz"sv,
    "application/x-lzma"sv, "application/x-iso9660-image"sv, "application/vnd.ms-cab-compressed"sv};
// Compressors of one file (no names inside): libarchive's "raw" format reads them.
constexpr std::array single_file_types = {"application/gzip"sv, "application/x-gzip"sv, "application/x-bzip2"sv,
                                          "application/x-xz"sv, "application/x-lzma"sv};

bool isOneOf(std::string_view type, auto const& list) { return std::find(list.begin(), list.end(), type) != list.end(); }

// One cookie per pool thread, loaded at first use (magic(3): a cookie is not thread-safe).
magic_set* threadCookie() {
  thread_local MagicCookie cookie = [] {
    // The text checks (character sets, CSV, JSON, language tokens) cost milliseconds per file of
    // prose (bench/content) and tell only kinds of text apart; what is blocked by type is binary
    // (executables, images, installers), found by the magic entries, which stay on.
    MagicCookie made(magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_TEXT | MAGIC_NO_CHECK_ENCODING |
                                MAGIC_NO_CHECK_CSV | MAGIC_NO_CHECK_JSON | MAGIC_NO_CHECK_TOKENS));
    if (made && magic_load(made.get(), nullptr) != 0) made.reset();
    return made;
  }();
  return cookie.get();
}

bool mentionsEncryption(archive* reader) {
  const char* text = archive_error_string(reader);
  std::string_view why = text ? text : "";
  return why.find("ncrypt") != std::string_view::npos || why.find("assphrase") != std::string_view::npos ||
         archive_read_has_encrypted_entries(reader) > 0;
}

std::string errorOf(archive* reader) {
  const char* text = archive_error_string(reader);
  return text ? text : "unknown error";
}

std::string baseName(std::string_view path) {
  std::size_t slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// "report.txt.gz" → "report.txt": a single-file compressor keeps no name of its own.
std::string withoutCompressorSuffix(std::string_view name) {
  for (std::string_view suffix : {".gz", ".gzip", ".bz2", ".xz", ".lzma", ".tgz"}) {
    if (name.size() > suffix.size() && asciiLower(name.substr(name.size() - suffix.size())) == suffix)
      return std::string(name.substr(0, name.size() - suffix.size())) + (suffix == ".tgz" ? ".tar" : "");
  }
  return std::string(name);
}

}  // namespace

std::string AttachmentInspector::detectedType(std::string_view content) {
  magic_set* cookie = threadCookie();
  if (cookie == nullptr || content.empty()) return {};
  const char* type = magic_buffer(cookie, content.data(), std::min(content.size(), magic_octets));
  return type ? std::string(type) : std::string();
}

bool AttachmentInspector::blocked() const {
  return std::any_of(findings_.begin(), findings_.end(),
                     [](const auto& finding) { return finding.kind == AttachmentFinding::Kind::Blocked; });
}

void AttachmentInspector::add(AttachmentFinding::Kind kind, std::string name, std::string why) {
  findings_.push_back({kind, std::move(name), std::move(why)});
}

std::string AttachmentInspector::blockedName(std::string_view name) const {
  if (name.empty()) return {};
  std::string normal = normalisedFileName(name);
  std::string base = baseName(normal);
  for (const auto& pattern : rules_.block)
    if (globMatches(pattern, normal) || globMatches(pattern, base)) return pattern;
  return {};
}

std::string AttachmentInspector::blockedType(std::string_view type) const {
  if (type.empty()) return {};
  for (const auto& pattern : rules_.block_types)
    if (globMatches(pattern, type)) return pattern;
  return {};
}

void AttachmentInspector::inspect(std::string_view name, std::string_view declared_type, std::string_view content) {
  std::string path = name.empty() ? std::string("(unnamed)") : normalisedFileName(name);
  inspectFile(path, name, declared_type, content, 0);
}

void AttachmentInspector::inspectFile(const std::string& path, std::string_view name, std::string_view declared_type,
                                      std::string_view content, int depth) {
  ++files_;
  if (auto pattern = blockedName(name); !pattern.empty()) {
    add(AttachmentFinding::Kind::Blocked, path, "name matches " + pattern);
    return;
  }
  std::string declared = asciiLower(declared_type);
  if (auto pattern = blockedType(declared); !pattern.empty()) {
    add(AttachmentFinding::Kind::Blocked, path, "declared type " + declared + " matches " + pattern);
    return;
  }
  std::string detected = detectedType(content);
  if (auto pattern = blockedType(detected); !pattern.empty()) {
    add(AttachmentFinding::Kind::Blocked, path, "detected type " + detected + " matches " + pattern);
    return;
  }
  if (isOneOf(detected, archive_types)) inspectArchive(path, name, content, depth + 1);
}

void AttachmentInspector::inspectArchive(const std::string& path, std::string_view name, std::string_view content,
                                         int depth) {
  if (depth > max_archive_depth) {
    add(AttachmentFinding::Kind::Unchecked, path, "archives nested deeper than " + std::to_string(max_archive_depth));
    return;
  }
  ArchiveReader reader(archive_read_new());
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_all(reader.get());
  bool single_file = isOneOf(detectedType(content), single_file_types);
  if (single_file) archive_read_support_format_raw(reader.get());
  if (archive_read_open_memory(reader.get(), content.data(), content.size()) != ARCHIVE_OK) {
    if (mentionsEncryption(reader.get())) add(AttachmentFinding::Kind::Encrypted, path, "encrypted archive");
    else add(AttachmentFinding::Kind::Unchecked, path, "archive not readable: " + errorOf(reader.get()));
    return;
  }
  archive_entry* entry = nullptr;
  while (true) {
    int status = archive_read_next_header(reader.get(), &entry);
    if (status == ARCHIVE_EOF) return;
    if (status < ARCHIVE_WARN) {
      if (mentionsEncryption(reader.get())) add(AttachmentFinding::Kind::Encrypted, path, "encrypted archive");
      else add(AttachmentFinding::Kind::Unchecked, path, "archive not readable: " + errorOf(reader.get()));
      return;
    }
    if (++entries_ > max_archive_entries) {
      add(AttachmentFinding::Kind::Unchecked, path, "more than " + std::to_string(max_archive_entries) + " archive entries");
      return;
    }
    if (archive_entry_filetype(entry) == AE_IFDIR) continue;
    const char* utf8 = archive_entry_pathname_utf8(entry);
    const char* raw = utf8 ? utf8 : archive_entry_pathname(entry);
    bool raw_format = archive_format(reader.get()) == ARCHIVE_FORMAT_RAW;
    std::string entry_name = raw_format ? withoutCompressorSuffix(baseName(std::string(name))) : std::string(raw ? raw : "");
    std::string entry_path = path + "/" + normalisedFileName(entry_name);
    if (auto pattern = blockedName(entry_name); !pattern.empty()) {
      ++files_;
      add(AttachmentFinding::Kind::Blocked, entry_path, "name matches " + pattern);
      return;
    }
    if (archive_entry_is_encrypted(entry)) {
      add(AttachmentFinding::Kind::Encrypted, path, "encrypted archive");
      continue;  // the names of the other entries are still known
    }
    std::string data;
    char buffer[64 * 1024];
    while (true) {
      la_ssize_t got = archive_read_data(reader.get(), buffer, sizeof buffer);
      if (got == 0) break;
      if (got < 0) {
        if (mentionsEncryption(reader.get())) add(AttachmentFinding::Kind::Encrypted, path, "encrypted archive");
        else add(AttachmentFinding::Kind::Unchecked, entry_path, "archive entry not readable: " + errorOf(reader.get()));
        return;
      }
      unpacked_ += static_cast<uint64_t>(got);
      if (unpacked_ > max_unpacked_octets) {
        add(AttachmentFinding::Kind::Unchecked, path,
            "more than " + std::to_string(max_unpacked_octets / (1024 * 1024)) + " MiB unpacked from archives");
        return;
      }
      data.append(buffer, static_cast<std::size_t>(got));
    }
    inspectFile(entry_path, entry_name, {}, data, depth);
    if (blocked()) return;
  }
}

}  // namespace mailgate
