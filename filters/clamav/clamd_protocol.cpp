#include "filters/clamav/clamd_protocol.h"

#include "filters/header_text.h"

namespace mailgate {

std::string instreamChunk(std::string_view data) {
  auto length = static_cast<uint32_t>(data.size());
  std::string chunk;
  chunk.reserve(4 + data.size());
  chunk += static_cast<char>((length >> 24) & 0xff);
  chunk += static_cast<char>((length >> 16) & 0xff);
  chunk += static_cast<char>((length >> 8) & 0xff);
  chunk += static_cast<char>(length & 0xff);
  chunk += data;
  return chunk;
}

std::string instreamEnd() { return std::string(4, '\0'); }

ClamdReply parseClamdReply(std::string_view reply) {
  // clamd writes "stream: " before the result of a stream scan; a reply may end in blanks.
  while (!reply.empty() && (reply.back() == ' ' || reply.back() == '\r' || reply.back() == '\n')) reply.remove_suffix(1);
  constexpr std::string_view prefix = "stream: ";
  constexpr std::string_view found = " FOUND";
  constexpr std::string_view error = " ERROR";
  if (reply == "stream: OK") return {ClamdReply::Kind::Clean, {}};
  if (reply.starts_with(prefix) && reply.ends_with(found) && reply.size() > prefix.size() + found.size()) {
    std::string_view name = reply.substr(prefix.size(), reply.size() - prefix.size() - found.size());
    std::string safe = printable(name, max_signature_octets);
    // A name that is nothing but what printable() drops is no name: the result stays a virus.
    return {ClamdReply::Kind::Virus, safe.empty() ? std::string("unnamed") : safe};
  }
  if (reply.ends_with(error)) {
    std::string_view why = reply.substr(0, reply.size() - error.size());
    if (why.starts_with(prefix)) why.remove_prefix(prefix.size());
    return {ClamdReply::Kind::Error, "clamd: " + printable(why, max_signature_octets, false)};
  }
  if (reply.empty()) return {ClamdReply::Kind::Error, "clamd gave an empty reply"};
  return {ClamdReply::Kind::Error, "clamd gave a reply not understood: " + printable(reply, max_signature_octets, false)};
}

std::optional<ClamdReply> ClamdReplyReader::feed(std::string_view bytes) {
  if (done_) return std::nullopt;
  std::size_t end = bytes.find_first_of(std::string_view("\0\n", 2));
  std::string_view piece = end == std::string_view::npos ? bytes : bytes.substr(0, end);
  if (buffer_.size() + piece.size() > max_clamd_reply_octets) {
    done_ = true;
    return ClamdReply{ClamdReply::Kind::Error,
                      "clamd's reply is longer than " + std::to_string(max_clamd_reply_octets) + " octets"};
  }
  buffer_ += piece;
  if (end == std::string_view::npos) return std::nullopt;
  done_ = true;
  return parseClamdReply(buffer_);
}

ClamdReply ClamdReplyReader::closed() {
  done_ = true;
  if (buffer_.empty()) return {ClamdReply::Kind::Error, "clamd closed the connection without a reply"};
  return parseClamdReply(buffer_);
}

}  // namespace mailgate
