#pragma once
// clamd's INSTREAM command, sans I/O (clamd(8), "INSTREAM"): the message goes in chunks, each
// preceded by its length as 4 octets in network order, and a zero length ends it. With the "z"
// prefix the command and clamd's reply end in NUL rather than a newline. The reply comes from a
// peer we do not control, so it is read within a bound and parsed strictly: "stream: OK",
// "stream: <signature> FOUND", or "<why> ERROR"; anything else is an error too.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate {

// The command that opens a stream scan (NUL-terminated: the "z" form).
inline constexpr std::string_view instream_command{"zINSTREAM\0", 10};
// A reply longer than this is not clamd's: signature names are tens of octets, error texts a
// line (clamd's own replies are built in buffers of 1 KiB or less).
constexpr std::size_t max_clamd_reply_octets = 1024;
// Signature names and error texts are cut to this in replies, headers and the log.
constexpr std::size_t max_signature_octets = 100;

// One chunk as INSTREAM wants it: its length in 4 octets, network order, then the octets.
// `data` must be shorter than 4 GiB (the stage sends far smaller chunks).
std::string instreamChunk(std::string_view data);
// The zero-length chunk that ends the stream.
std::string instreamEnd();

struct ClamdReply {
  enum class Kind { Clean, Virus, Error };
  Kind kind = Kind::Error;
  std::string text;  // Virus: the signature name; Error: why (printable ASCII, bounded)
};

// Parses one complete reply (without its terminating NUL or newline).
ClamdReply parseClamdReply(std::string_view reply);

// Collects clamd's reply from the pieces the socket gives: complete at the first NUL (or
// newline), an error when it grows past max_clamd_reply_octets first.
class ClamdReplyReader {
 public:
  // Takes received octets; returns the reply once it is complete (then ignores the rest).
  std::optional<ClamdReply> feed(std::string_view bytes);
  // The peer closed the stream: what came so far, if anything, is taken as the whole reply.
  ClamdReply closed();
  bool done() const { return done_; }

 private:
  std::string buffer_;
  bool done_ = false;
};

}  // namespace mailgate
