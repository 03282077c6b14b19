#include "gateway/smtp/replies.h"

#include <string>

namespace mailgate::replies {

Reply greeting(std::string_view hostname) { return Reply::of(220, "", std::string(hostname) + " ESMTP mailgate"); }
Reply heloAccepted(std::string_view hostname) { return Reply::of(250, "", hostname); }

const Reply& senderAccepted() {
  static const Reply reply = Reply::of(250, "2.1.0", "Ok");
  return reply;
}
const Reply& recipientAccepted() {
  static const Reply reply = Reply::of(250, "2.1.5", "Ok");
  return reply;
}
const Reply& startMailInput() {
  static const Reply reply = Reply::of(354, "", "End data with <CR><LF>.<CR><LF>");
  return reply;
}
const Reply& ok() {
  static const Reply reply = Reply::of(250, "2.0.0", "Ok");
  return reply;
}
const Reply& bye() {
  static const Reply reply = Reply::of(221, "2.0.0", "Bye");
  return reply;
}
const Reply& cannotVerify() {
  // RFC 5321 §3.5.3: 252 when the server will not verify but will accept mail for it.
  static const Reply reply = Reply::of(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
  return reply;
}
const Reply& help() {
  static const Reply reply = Reply::of(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\nSee RFC 5321");
  return reply;
}
const Reply& readyToStartTls() {
  static const Reply reply = Reply::of(220, "2.0.0", "Ready to start TLS");
  return reply;
}

const Reply& commandUnknown() {
  static const Reply reply = Reply::of(500, "5.5.2", "Error: command not recognized");
  return reply;
}
const Reply& lineTooLong() {
  static const Reply reply = Reply::of(500, "5.5.2", "Error: line too long");
  return reply;
}
const Reply& notImplemented() {
  static const Reply reply = Reply::of(502, "5.5.1", "Error: command not implemented");
  return reply;
}
const Reply& syntax(std::string_view verb) {
  static const Reply ehlo = Reply::of(501, "5.5.4", "Syntax: EHLO hostname");
  static const Reply helo = Reply::of(501, "5.5.4", "Syntax: HELO hostname");
  static const Reply data = Reply::of(501, "5.5.4", "Syntax: DATA");
  static const Reply rset = Reply::of(501, "5.5.4", "Syntax: RSET");
  static const Reply vrfy = Reply::of(501, "5.5.4", "Syntax: VRFY address");
  static const Reply starttls = Reply::of(501, "5.5.4", "Syntax: STARTTLS");
  static const Reply other = Reply::of(501, "5.5.4", "Syntax error in parameters");
  if (verb == "EHLO") return ehlo;
  if (verb == "HELO") return helo;
  if (verb == "DATA") return data;
  if (verb == "RSET") return rset;
  if (verb == "VRFY") return vrfy;
  if (verb == "STARTTLS") return starttls;
  return other;
}
const Reply& needHelo() {
  static const Reply reply = Reply::of(503, "5.5.1", "Error: send HELO/EHLO first");
  return reply;
}
const Reply& needMail() {
  static const Reply reply = Reply::of(503, "5.5.1", "Error: need MAIL command");
  return reply;
}
const Reply& needRcpt() {
  static const Reply reply = Reply::of(503, "5.5.1", "Error: need RCPT command");
  return reply;
}
const Reply& nestedMail() {
  static const Reply reply = Reply::of(503, "5.5.1", "Error: nested MAIL command");
  return reply;
}
const Reply& refusedAtGreeting() {
  static const Reply reply = Reply::of(503, "5.5.1", "Error: service refused at connection time, send QUIT");
  return reply;
}
const Reply& noValidRecipients() {
  static const Reply reply = Reply::of(554, "5.5.1", "Error: no valid recipients");
  return reply;
}
const Reply& tooManyRecipients() {
  static const Reply reply = Reply::of(452, "4.5.3", "Error: too many recipients");
  return reply;
}
const Reply& messageTooBig() {
  static const Reply reply = Reply::of(552, "5.3.4", "Error: message size exceeds fixed maximum message size");
  return reply;
}
const Reply& bareLineEnd() {
  static const Reply reply = Reply::of(550, "5.5.2", "Error: bare <LF> or <CR> received in message data (RFC 5321 2.3.8)");
  return reply;
}
const Reply& dataLineTooLong() {
  static const Reply reply = Reply::of(500, "5.5.2", "Error: line too long in message data");
  return reply;
}
Reply tooManyErrors(std::string_view hostname) {
  return Reply::of(421, "4.7.0", std::string(hostname) + " Error: too many errors");
}
const Reply& tlsAlreadyActive() {
  static const Reply reply = Reply::of(503, "5.5.1", "Error: TLS already active");
  return reply;
}
const Reply& startTlsInTransaction() {
  static const Reply reply = Reply::of(503, "5.5.1", "Error: MAIL transaction in progress");
  return reply;
}
const Reply& mustStartTls() {
  static const Reply reply = Reply::of(530, "5.7.0", "Must issue a STARTTLS command first");
  return reply;
}

Reply relayDenied(std::string_view address) {
  auto reply = Reply::make(554, "5.7.1", "<" + std::string(address) + ">: Relay access denied");
  return reply ? std::move(*reply) : Reply::of(554, "5.7.1", "Relay access denied");
}
const Reply& tooManyConnections() {
  static const Reply reply = Reply::of(421, "4.7.0", "Error: too many connections, try again later");
  return reply;
}
const Reply& tooManyConnectionsFromClient() {
  static const Reply reply = Reply::of(421, "4.7.0", "Error: too many connections from your address, try again later");
  return reply;
}
const Reply& untrustedProxy() {
  static const Reply reply = Reply::of(421, "4.7.0", "Error: not a trusted proxy");
  return reply;
}
const Reply& badProxyHeader() {
  static const Reply reply = Reply::of(421, "4.7.0", "Error: bad PROXY header");
  return reply;
}
Reply timeout(std::string_view hostname) {
  return Reply::of(421, "4.4.2", std::string(hostname) + " Error: timeout exceeded");
}
const Reply& shuttingDown() {
  static const Reply reply = Reply::of(421, "4.3.2", "Service shutting down, try again later");
  return reply;
}
const Reply& stageTimedOut() {
  static const Reply reply = Reply::of(451, "4.3.0", "Temporary failure, please try again later");
  return reply;
}
const Reply& stageMisbehaved() {
  static const Reply reply = Reply::of(451, "4.3.0", "Temporary local problem, please try again later");
  return reply;
}
const Reply& cannotStoreMessage() {
  static const Reply reply = Reply::of(451, "4.3.0", "Error: cannot store the message, try again later");
  return reply;
}
const Reply& cannotReadMessage() {
  static const Reply reply = Reply::of(451, "4.3.0", "Error: cannot read the message, try again later");
  return reply;
}
const Reply& localDeliveryFailed() {
  static const Reply reply = Reply::of(451, "4.3.0", "Error: local delivery failed, try again later");
  return reply;
}
Reply queuedLocally(std::string_view id) { return Reply::of(250, "2.0.0", "Ok: queued as " + std::string(id)); }
Reply downstreamUnavailable(std::string_view why) {
  auto reply = Reply::make(451, "4.4.1", "Downstream server unavailable, try again later (" + std::string(why) + ")");
  return reply ? std::move(*reply) : Reply::of(451, "4.4.1", "Downstream server unavailable, try again later");
}
Reply downstreamBrokeProtocol(std::string_view what) {
  auto reply = Reply::make(451, "4.4.2", "Downstream server broke the protocol, try again later (" + std::string(what) + ")");
  return reply ? std::move(*reply) : Reply::of(451, "4.4.2", "Downstream server broke the protocol, try again later");
}
Reply downstreamTlsUnavailable(std::string_view why) {
  // RFC 3463 X.7.5: "cryptographic failure"; 4xx, since the downstream may be fixed and the
  // client's retry then succeeds.
  auto reply = Reply::make(451, "4.7.5", "Downstream server TLS unavailable, try again later (" + std::string(why) + ")");
  return reply ? std::move(*reply) : Reply::of(451, "4.7.5", "Downstream server TLS unavailable, try again later");
}

std::vector<Entry> catalogue() {
  const Reply all[] = {greeting("h"), heloAccepted("h"), senderAccepted(), recipientAccepted(), startMailInput(), ok(),
                       bye(), cannotVerify(), help(), commandUnknown(), lineTooLong(), notImplemented(), syntax(""),
                       needHelo(), needMail(), needRcpt(), nestedMail(), refusedAtGreeting(), noValidRecipients(),
                       tooManyRecipients(), messageTooBig(), bareLineEnd(), dataLineTooLong(), tooManyErrors("h"),
                       relayDenied("a@b"), tooManyConnections(), tooManyConnectionsFromClient(), untrustedProxy(),
                       badProxyHeader(), timeout("h"), shuttingDown(), stageTimedOut(), stageMisbehaved(),
                       cannotStoreMessage(), cannotReadMessage(), localDeliveryFailed(), queuedLocally("x"),
                       downstreamUnavailable("x"), downstreamBrokeProtocol("x"), readyToStartTls(),
                       tlsAlreadyActive(), startTlsInTransaction(), mustStartTls(), downstreamTlsUnavailable("x")};
  std::vector<Entry> entries;
  for (const Reply& reply : all) {
    Entry entry{reply.code(), reply.enhanced()};
    bool seen = false;
    for (const Entry& known : entries) seen = seen || (known.code == entry.code && known.enhanced == entry.enhanced);
    if (!seen) entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace mailgate::replies
