#pragma once
// RFC 5321 §4.1.2 paths and the parameters of MAIL and RCPT. Pure parsing: no policy.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/smtp/reply.h"
#include "gateway/util/ascii.h"

namespace mailgate {

// RFC 5321 §4.5.3.1.1-3
constexpr std::size_t max_local_part_octets = 64;
constexpr std::size_t max_domain_octets = 255;
constexpr std::size_t max_path_octets = 256;

struct Mailbox {
  std::string local_part;  // as written, quotes included: "\"john doe\"" or "john.doe"
  std::string domain;      // as written: "Example.ORG", "[192.0.2.1]", "[IPv6:2001:db8::1]"; empty
                           // only for RCPT TO:<postmaster>
  std::string address() const;  // local_part "@" domain, or local_part alone when domain is empty
};

struct Path {
  bool null = false;  // "<>": the null reverse-path (MAIL only)
  Mailbox mailbox;
  std::string address() const;  // "" for the null path
  std::string bracketed() const;  // "<a@b>" or "<>"
};

enum class BodyType { Unspecified, SevenBit, EightBitMime };

struct MailCommand {
  Path path;
  std::optional<uint64_t> size;  // SIZE= (RFC 1870)
  BodyType body = BodyType::Unspecified;  // BODY= (RFC 6152)
};

struct RcptCommand {
  Path path;
};

// `argument` is everything after the verb, e.g. "FROM:<a@b> SIZE=100" for MAIL; the "FROM:" /
// "TO:" keyword is matched case-insensitively, and one space after the colon is tolerated.
// Errors are the replies to send: 501 5.5.4 (syntax of the command), 501 5.1.7 (bad sender
// address), 501 5.1.3 (bad recipient address), 555 5.5.4 (parameter not recognised),
// 501 5.5.4 (bad parameter value).
std::expected<MailCommand, Reply> parseMailCommand(std::string_view argument);
std::expected<RcptCommand, Reply> parseRcptCommand(std::string_view argument);

// An address given on its own (by an operator, not a client): the path that MAIL FROM:<...> or
// RCPT TO:<...> takes, with or without its angle brackets, and nothing after it. "" and "<>" are
// the null sender. Errors are the session's replies (501 5.1.7, 501 5.1.3).
std::expected<Path, Reply> parseSenderAddress(std::string_view address);
std::expected<Path, Reply> parseRecipientAddress(std::string_view address);

// RFC 5321 §4.1.2 Domain or address-literal; used for HELO/EHLO arguments too.
bool isValidDomain(std::string_view domain);
bool isValidAddressLiteral(std::string_view literal);  // "[192.0.2.1]", "[IPv6:...]"


}  // namespace mailgate
