#pragma once
// The downstream's queue id, read from its reply to the end of data, so that a transaction in
// mailgate's decision log can be followed into the downstream's own log.

#include <cstddef>
#include <string>

#include "gateway/smtp/reply.h"

namespace mailgate {

// Queue ids are short tokens (Postfix: 10-20 characters, Exim 4.97: 23); anything longer is not
// one, and the log holds no more than this of a peer's words.
constexpr std::size_t max_queue_id_octets = 64;

// The queue id in a positive reply, or "" when it gives none. RFC 5321 gives the text no shape,
// so this knows the common servers' (best effort; the first that matches wins):
//   Postfix, smtp-sink, Haraka, mailgate's Maildir   "250 2.0.0 Ok: queued as 4XyZ1n2bcdz7"
//   Exim                                             "250 OK id=1rAbCd-000123-4X"
//   Sendmail, OpenSMTPD                              "250 2.0.0 4AB1CdE0123 Message accepted for delivery"
//   Dovecot LMTP                                     "250 2.0.0 <user@example.org> kRq9Ax0vY2X Saved"
// Others (Exchange's "Queued mail for delivery") give none that can be told apart from words.
std::string queueIdOf(const Reply& reply);

}  // namespace mailgate
