#pragma once
// The embedded delivery used when no downstream is configured: one Maildir (tmp/, new/, cur/).
// A message is written to tmp/, fsynced, renamed into new/, and new/ is fsynced, so that once
// deliver() returns the message survives a crash (the client hears 250 only after that).
// deliver() blocks: call it on the thread pool.

#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/message/outgoing_message.h"
#include "gateway/spool/spool.h"

namespace mailgate {

class Maildir {
 public:
  // Creates path, path/tmp, path/new and path/cur when missing.
  static std::expected<Maildir, std::string> open(std::string path);

  // Writes `headers` (already CRLF-terminated header lines) followed by the spool's content.
  // Returns the file's name in new/. Safe to call from several threads at once.
  std::expected<std::string, std::string> deliver(std::string_view headers, const Spool& spool) const;
  // The message as it leaves the gateway (added headers, content less omitted fields).
  std::expected<std::string, std::string> deliver(const OutgoingMessage& message) const;

  const std::string& path() const { return path_; }

 private:
  explicit Maildir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace mailgate
