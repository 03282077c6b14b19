#pragma once
// Never an open relay: which recipients the gateway takes. The session and `mailgate check`
// both ask here, so that check says what a session would.

#include <optional>

#include "gateway/config/config.h"
#include "gateway/smtp/address.h"
#include "gateway/smtp/reply.h"

namespace mailgate {

// The 554 a recipient outside server.domains gets; nothing for a served domain, or for
// <postmaster> without a domain, which RFC 5321 §4.5.1 says must be accepted.
inline std::optional<Reply> relayRefusal(const ServerConfig& server, const Path& recipient) {
  if (recipient.mailbox.domain.empty() || server.servesDomain(recipient.mailbox.domain)) return std::nullopt;
  return Reply::of(554, "5.7.1", "<" + recipient.address() + ">: Relay access denied");
}

}  // namespace mailgate
