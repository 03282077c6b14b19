#pragma once
// The message as it leaves the gateway: the headers it adds, then the received content less the
// header fields it must not pass on (an Authentication-Results field claiming to be ours, RFC 8601
// §5; fields a stage replaces). Read in pieces, so a spooled 50 MiB message is never held whole.

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/spool/spool.h"

namespace mailgate {

struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;  // one past the last byte
};

// RFC 8601 §2.2: "Authentication-Results: authserv-id;" then each "method=result ..." on its own
// folded line; "none" when there is nothing to say.
std::string authenticationResultsHeader(std::string_view authserv_id, const std::vector<std::string>& results);
// The same without the field name and the final CRLF (`mailgate check` shows it as one field).
std::string authenticationResultsValue(std::string_view authserv_id, const std::vector<std::string>& results);

// The name of one header field (unfolded), as RFC 5322 reads it: the ftext before the colon, less
// the blanks that obs-optional (§4.5.3) allows before it ("Authentication-Results :"); nullopt
// when the line is not a field.
std::optional<std::string> headerFieldName(std::string_view field);
// RFC 8601 §2.2: the authserv-id of an (unfolded) Authentication-Results value, after any CFWS,
// unquoted when it is a quoted-string ("\"mx.example\"" is mx.example), without the version that
// may follow it ("mx.example 1;"); nullopt when it cannot be read (an unclosed comment or quote,
// nothing there).
std::optional<std::string> authservIdOf(std::string_view value);

// The header fields of `content` (up to the first empty line, at most max_header_scan_octets) that
// must not pass: Authentication-Results fields whose authserv-id is `authserv_id` (or cannot be
// read), and fields named in `replaced_names` (the gateway adds its own in their place; a name
// ending in "*" stands for every name that starts with what comes before it, "X-Spam-*"). Names
// are matched as headerFieldName reads them, ignoring case; authserv-ids ignoring case and a
// final dot.
std::expected<std::vector<ByteRange>, std::string> omittedHeaderFields(const Spool& content, std::string_view authserv_id,
                                                                       const std::vector<std::string>& replaced_names = {});

class OutgoingMessage {
 public:
  OutgoingMessage(std::string added_headers, std::shared_ptr<const Spool> content, std::vector<ByteRange> omitted);

  uint64_t size() const;
  // Copies up to `length` bytes from `offset` of the outgoing message; 0 at the end.
  std::expected<std::size_t, std::string> read(uint64_t offset, char* buffer, std::size_t length) const;
  // The whole message as one or two views when it is all in memory and nothing is omitted
  // (the common case: no copy), else empty.
  bool contiguous() const { return omitted_.empty() && !content_->onDisk(); }
  const std::string& addedHeaders() const { return added_headers_; }
  std::string_view memoryContent() const { return content_->memory(); }

 private:
  std::string added_headers_;
  std::shared_ptr<const Spool> content_;
  std::vector<ByteRange> omitted_;  // sorted, disjoint
};

}  // namespace mailgate
