#pragma once
// The gateway's own replies, in one place: what the session, the transaction driver and the
// connection say, each built once through Reply::of (so a bad one aborts at start, not on the
// wire). This is the code's copy of the README's reply table; tests/unit/gateway/smtp/
// replies_test.cpp checks that the two list the same codes. Replies a stage chooses (SPF, DKIM,
// DMARC, rules, ...) live with the stage; replies relayed from the downstream are its own.

#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/reply.h"

namespace mailgate::replies {

// Greeting, dialogue, goodbye (RFC 5321 §4.2, §4.3.2).
Reply greeting(std::string_view hostname);  // 220 <host> ESMTP mailgate
Reply heloAccepted(std::string_view hostname);  // 250 <host>
const Reply& senderAccepted();     // 250 2.1.0 Ok
const Reply& recipientAccepted();  // 250 2.1.5 Ok
const Reply& startMailInput();     // 354
const Reply& ok();                 // 250 2.0.0 Ok (RSET, NOOP)
const Reply& bye();                // 221 2.0.0 Bye
const Reply& cannotVerify();       // 252 2.5.0
const Reply& help();               // 214 2.0.0
const Reply& readyToStartTls();    // 220 2.0.0 (RFC 3207 §4)

// Protocol refusals the session decides alone.
const Reply& commandUnknown();        // 500 5.5.2
const Reply& lineTooLong();           // 500 5.5.2
const Reply& notImplemented();        // 502 5.5.1
const Reply& syntax(std::string_view verb);  // 501 5.5.4 Syntax: <usage>
const Reply& needHelo();              // 503 5.5.1
const Reply& needMail();              // 503 5.5.1
const Reply& needRcpt();              // 503 5.5.1
const Reply& nestedMail();            // 503 5.5.1
const Reply& refusedAtGreeting();     // 503 5.5.1: after a 554 greeting, only QUIT (RFC 5321 §3.1)
const Reply& noValidRecipients();     // 554 5.5.1 (RFC 2920 §3.1)
const Reply& tooManyRecipients();     // 452 4.5.3
const Reply& messageTooBig();         // 552 5.3.4 (RFC 1870)
const Reply& bareLineEnd();           // 550 5.5.2: bare LF or CR in DATA (SMTP smuggling)
const Reply& dataLineTooLong();       // 500 5.5.2
Reply tooManyErrors(std::string_view hostname);  // 421 4.7.0
const Reply& tlsAlreadyActive();      // 503 5.5.1: STARTTLS once TLS is up (RFC 3207 §4.2)
const Reply& startTlsInTransaction(); // 503 5.5.1: STARTTLS between MAIL and the end of data
const Reply& mustStartTls();          // 530 5.7.0: server.require_tls, MAIL before STARTTLS

// Policy and plumbing.
Reply relayDenied(std::string_view address);  // 554 5.7.1 Relay access denied
const Reply& tooManyConnections();            // 421 4.7.0
const Reply& tooManyConnectionsFromClient();  // 421 4.7.0
const Reply& untrustedProxy();                // 421 4.7.0 (logged; never sent: the proxy gets no SMTP)
const Reply& badProxyHeader();                // 421 4.7.0 (logged; never sent)
Reply timeout(std::string_view hostname);     // 421 4.4.2
const Reply& shuttingDown();                  // 421 4.3.2
const Reply& stageTimedOut();                 // 451 4.3.0: a stage did not answer within its timeout
const Reply& stageMisbehaved();               // 451 4.3.0: a stage answered a wrong-class reply
const Reply& cannotStoreMessage();            // 451 4.3.0: the spool failed
const Reply& cannotReadMessage();             // 451 4.3.0: the spool could not be read back
const Reply& localDeliveryFailed();           // 451 4.3.0: the Maildir write failed
Reply queuedLocally(std::string_view id);     // 250 2.0.0 Ok: queued as <id> (Maildir)
Reply downstreamUnavailable(std::string_view why);       // 451 4.4.1
Reply downstreamBrokeProtocol(std::string_view what);    // 451 4.4.2
Reply downstreamTlsUnavailable(std::string_view why);    // 451 4.7.5: downstream.tls = "required"

// Every reply above as (code, enhanced code), for the check against the README's table.
struct Entry {
  int code;
  std::string enhanced;
};
std::vector<Entry> catalogue();

}  // namespace mailgate::replies
