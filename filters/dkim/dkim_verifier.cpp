#include "filters/dkim/dkim_verifier.h"

#include <strings.h>

#include <optional>

#include "filters/dkim/dkim_identifiers.h"

namespace mailgate {
namespace {

const char* algorithmName(int algorithm) {
  switch (algorithm) {
    case DKIM_SIGN_RSASHA1: return "rsa-sha1";
    case DKIM_SIGN_RSASHA256: return "rsa-sha256";
    case DKIM_SIGN_ED25519SHA256: return "ed25519-sha256";
    default: return "";
  }
}

std::string text(const unsigned char* value) { return value == nullptr ? std::string() : reinterpret_cast<const char*>(value); }

std::optional<std::string> tagValue(DKIM_SIGINFO* signature, const char* tag) {
  const unsigned char* value =
      dkim_sig_gettagvalue(signature, false, reinterpret_cast<unsigned char*>(const_cast<char*>(tag)));
  if (value == nullptr) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(value));
}

// The signature's a= as written, when it names an algorithm we know ("" otherwise). libopendkim
// records the algorithm only for signatures that got past its first checks (v=, d=, s=, x=, t=, c=):
// for an expired or malformed one dkim_sig_getsignalg reads 0, which is DKIM_SIGN_RSASHA1.
std::string algorithmTag(DKIM_SIGINFO* signature) {
  std::string tag = tagValue(signature, "a").value_or("");
  for (int known : {DKIM_SIGN_RSASHA1, DKIM_SIGN_RSASHA256, DKIM_SIGN_ED25519SHA256})
    if (strcasecmp(tag.c_str(), algorithmName(known)) == 0) return algorithmName(known);
  return {};
}

}  // namespace

void classifyDkimSignature(const DkimSignatureFacts& facts, DkimSignatureResult& out) {
  const char* described = dkim_sig_geterrorstr(facts.error);
  std::string why = described != nullptr && facts.error != DKIM_SIGERROR_OK ? described : "";
  if (facts.passed) {
    // RFC 8301 §3.1: rsa-sha1 signatures must not be considered valid, whatever their math says.
    if (facts.algorithm == DKIM_SIGN_RSASHA1) {
      out.result = "policy";
      out.reason = "rsa-sha1 is not accepted (RFC 8301)";
      return;
    }
    out.result = "pass";
    return;
  }
  switch (facts.error) {
    case DKIM_SIGERROR_KEYTOOSMALL:  // RFC 8301 §3.2
      out.result = "policy";
      out.reason = "key shorter than 1024 bits (RFC 8301)";
      return;
    case DKIM_SIGERROR_KEYFAIL:  // the lookup failed or timed out: a retry may succeed
      out.result = "temperror";
      out.reason = "key lookup failed";
      return;
    case DKIM_SIGERROR_NOKEY:
      out.result = "permerror";
      out.reason = "no key for this signature";
      return;
    case DKIM_SIGERROR_KEYREVOKED:
      out.result = "permerror";
      out.reason = "key revoked";
      return;
    default: break;
  }
  if (facts.body_hash_mismatch) {
    out.result = "fail";
    out.reason = "body hash did not verify";
    return;
  }
  if (facts.error == DKIM_SIGERROR_BADSIG || (facts.processed && facts.error == DKIM_SIGERROR_OK)) {
    out.result = "fail";
    out.reason = "signature did not verify";
    return;
  }
  if (facts.error != DKIM_SIGERROR_OK && facts.error != DKIM_SIGERROR_UNKNOWN) {
    // Malformed signatures, bad key records, expired signatures: retrying cannot help.
    out.result = "permerror";
    out.reason = why.empty() ? "signature could not be verified" : why;
    return;
  }
  out.result = "neutral";
  out.reason = "signature not evaluated";
}

DkimVerifier::DkimVerifier(std::shared_ptr<const DkimLibrary> library) : library_(std::move(library)) {
  DKIM_STAT status = DKIM_STAT_OK;
  dkim_.reset(dkim_verify(library_->get(), reinterpret_cast<const unsigned char*>("mailgate"), nullptr, &status));
  if (!dkim_) {
    error_ = "libopendkim could not start a verification";
    return;
  }
  // The prescreen callback reads max_signatures from here.
  dkim_set_user_context(dkim_.get(), const_cast<DkimLibrary*>(library_.get()));
}

void DkimVerifier::feed(std::string_view bytes) {
  if (!error_.empty() || !signed_) return;
  if (in_body_) {
    dkim_body(dkim_.get(), reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data())), bytes.size());
    return;
  }
  while (!bytes.empty() && !in_body_ && error_.empty()) {
    std::size_t end = bytes.find('\n');
    if (end == std::string_view::npos) {
      line_.append(bytes);
      header_octets_ += bytes.size();
      if (header_octets_ > max_header_octets) error_ = "header section too long to verify";
      return;
    }
    line_.append(bytes.substr(0, end + 1));
    header_octets_ += end + 1;
    bytes.remove_prefix(end + 1);
    if (header_octets_ > max_header_octets) {
      error_ = "header section too long to verify";
      return;
    }
    std::string line = std::move(line_);
    line_.clear();
    headerLine(line);
  }
  if (in_body_ && signed_ && !bytes.empty() && error_.empty())
    dkim_body(dkim_.get(), reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data())), bytes.size());
}

void DkimVerifier::headerLine(std::string_view line) {
  std::string_view content = line;
  if (!content.empty() && content.back() == '\n') content.remove_suffix(1);
  if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
  if (content.empty()) {
    endOfHeaders();
    return;
  }
  if (content.front() == ' ' || content.front() == '\t') {  // a folded continuation (RFC 5322 §2.2.3)
    field_ += "\r\n";
    field_ += content;
    return;
  }
  flushField();
  field_ = content;
}

void DkimVerifier::flushField() {
  if (field_.empty()) return;
  if (field_.size() > 5 && strncasecmp(field_.c_str(), "from:", 5) == 0 && from_fields_.size() < 4) {
    std::string value;
    for (char c : std::string_view(field_).substr(5))
      if (c != '\r' && c != '\n') value += c;
    from_fields_.push_back(std::move(value));
  }
  // A field libopendkim refuses (no colon, say) is left out; the signatures over it then fail.
  dkim_header(dkim_.get(), reinterpret_cast<unsigned char*>(field_.data()), field_.size());
  field_.clear();
}

void DkimVerifier::endOfHeaders() {
  flushField();
  in_body_ = true;
  DKIM_STAT status = dkim_eoh(dkim_.get());
  if (status == DKIM_STAT_NOSIG) signed_ = false;  // nothing to verify: the body need not be hashed
}

std::vector<DkimSignatureResult> DkimVerifier::finish(std::string& error) {
  std::vector<DkimSignatureResult> results;
  if (error_.empty() && !in_body_) {  // a message with no body: the header section ends here
    if (!line_.empty()) headerLine(line_);
    line_.clear();
    if (!in_body_) endOfHeaders();
  }
  if (!error_.empty()) {
    error = error_;
    return results;
  }
  if (!signed_) return results;
  dkim_eom(dkim_.get(), nullptr);
  DKIM_SIGINFO** signatures = nullptr;
  int count = 0;
  if (dkim_getsiglist(dkim_.get(), &signatures, &count) != DKIM_STAT_OK) return results;
  for (int i = 0; i < count; ++i) {
    DKIM_SIGINFO* signature = signatures[i];
    unsigned int flags = dkim_sig_getflags(signature);
    if ((flags & DKIM_SIGFLAG_IGNORE) != 0) continue;  // over max_signatures
    DkimSignatureResult result;
    result.domain = text(dkim_sig_getdomain(signature));
    result.selector = text(dkim_sig_getselector(signature));
    dkim_alg_t algorithm = DKIM_SIGN_UNKNOWN;
    dkim_sig_getsignalg(signature, &algorithm);
    result.algorithm = algorithmTag(signature);
    unsigned int bits = 0;
    if (dkim_sig_getkeysize(signature, &bits) == DKIM_STAT_OK) result.key_bits = bits;
    unsigned char substring[64] = {};
    size_t length = sizeof substring - 1;
    if (dkim_get_sigsubstring(dkim_.get(), signature, reinterpret_cast<char*>(substring), &length) == DKIM_STAT_OK)
      result.b.assign(reinterpret_cast<char*>(substring), length);
    DkimSignatureFacts facts;
    facts.processed = (flags & DKIM_SIGFLAG_PROCESSED) != 0;
    int body_hash = dkim_sig_getbh(signature);
    facts.passed = (flags & DKIM_SIGFLAG_PASSED) != 0 && body_hash == DKIM_SIGBH_MATCH;
    facts.body_hash_mismatch = body_hash == DKIM_SIGBH_MISMATCH;
    facts.error = dkim_sig_geterror(signature);
    facts.algorithm = algorithm;
    classifyDkimSignature(facts, result);
    // RFC 6376 §3.5: identifiers outside the grammar make the signature invalid, however its
    // cryptography came out (a key can be published under any name). libopendkim's own
    // permerror, if any, already says what is wrong first.
    std::optional<std::string> identity = tagValue(signature, "i");
    auto invalid = invalidDkimIdentifiers(result.domain, result.selector, identity);
    if (invalid && result.result != "permerror") {
      result.result = "permerror";
      result.reason = *invalid;
    }
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace mailgate
