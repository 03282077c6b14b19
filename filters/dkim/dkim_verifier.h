#pragma once
// Verifies the DKIM signatures (RFC 6376) of one message fed to it in pieces as it arrives: the
// header fields go to libopendkim one by one, the body in whatever pieces came in, and finish()
// gives one result per signature in RFC 8601 terms. Not thread-safe: one thread at a time (the
// stage runs its pieces one after another on the thread pool).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/dkim/dkim_library.h"

namespace mailgate {

struct DkimSignatureResult {
  // RFC 8601 §2.7.1: pass, fail, policy, neutral, temperror, permerror.
  std::string result;
  std::string reason;     // why, when not pass ("body hash did not verify", "key revoked", ...)
  std::string domain;     // d=
  std::string selector;   // s=
  std::string algorithm;  // a=: rsa-sha256, rsa-sha1, ed25519-sha256
  std::string b;          // the start of b= that tells this signature apart (RFC 6008)
  unsigned key_bits = 0;
};

using DkimHandle = std::unique_ptr<DKIM, CFree<&dkim_free>>;

class DkimVerifier {
 public:
  // A header section longer than this is not verified (RFC 5322 sets no limit; ours bounds the
  // memory one message's headers can take while they are split into fields).
  static constexpr std::size_t max_header_octets = 1024 * 1024;

  explicit DkimVerifier(std::shared_ptr<const DkimLibrary> library);

  void feed(std::string_view bytes);
  // Ends the message and verifies. `error` is set (and the list empty) when the message could not
  // be verified at all (libopendkim failed, headers too long).
  std::vector<DkimSignatureResult> finish(std::string& error);
  // The From: fields seen in the header section, each unfolded value as it came.
  const std::vector<std::string>& fromFields() const { return from_fields_; }

 private:
  void headerLine(std::string_view line);
  void flushField();
  void endOfHeaders();

  std::shared_ptr<const DkimLibrary> library_;
  DkimHandle dkim_;
  std::string error_;
  bool in_body_ = false;
  bool signed_ = true;  // false once libopendkim said there is no signature: the body is skipped
  std::string line_;    // header mode: a line not yet ended
  std::string field_;   // header mode: the field being gathered (with its folded lines)
  std::size_t header_octets_ = 0;
  std::vector<std::string> from_fields_;
};

// RFC 8601 result for one signature from libopendkim's view of it (pure; unit-tested).
struct DkimSignatureFacts {
  bool processed = false;     // DKIM_SIGFLAG_PROCESSED
  bool passed = false;        // DKIM_SIGFLAG_PASSED and body hash matched
  bool body_hash_mismatch = false;
  int error = DKIM_SIGERROR_OK;
  int algorithm = DKIM_SIGN_UNKNOWN;
};
void classifyDkimSignature(const DkimSignatureFacts& facts, DkimSignatureResult& out);

}  // namespace mailgate
