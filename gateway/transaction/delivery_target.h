#pragma once
// Where an accepted transaction goes: the relay to the downstream server, the embedded Maildir,
// or nowhere (`mailgate check`). The transaction driver talks only to this interface; the host
// that owns the sockets gives it one. Every callback runs exactly once, on the driver's thread.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gateway/message/outgoing_message.h"
#include "gateway/smtp/address.h"
#include "gateway/smtp/reply.h"
#include "gateway/transaction/runtime.h"

namespace mailgate {

struct Envelope {
  Path sender;
  std::optional<uint64_t> declared_size;
  BodyType body = BodyType::Unspecified;
};

// What delivering the message came to.
struct DeliveryAnswer {
  Reply reply;  // for the client: the downstream's own reply, or the 4xx given in its place
  // For the decision log: the downstream's reply that `reply` stands in for (one out of RFC
  // 5321's sequence), and what went wrong when `reply` is not simply the answer ("timed out").
  std::optional<Reply> downstream_reply = {};
  std::string problem = {};
  bool encrypted = false;  // the message went over TLS (the decision record's tls.downstream)
};

class DeliveryTarget {
 public:
  // nullopt: the recipient is taken (the session gives its own 250); else the reply to give: a
  // refusal, or the downstream's own words.
  using RecipientDone = std::move_only_function<void(std::optional<Reply>)>;
  using MessageDone = std::move_only_function<void(DeliveryAnswer)>;

  virtual ~DeliveryTarget() = default;
  // One recipient the pipeline passed, under the transaction's runtime snapshot.
  virtual void recipient(const Runtime& runtime, const Envelope& envelope, const Path& recipient, RecipientDone done) = 0;
  // The message, after the content stages passed; `done` gets the final reply for the client.
  virtual void message(const Runtime& runtime, std::shared_ptr<const OutgoingMessage> message, MessageDone done) = 0;
  // The transaction is over without a message (refused, reset, abandoned).
  virtual void reset() = 0;
  // The session is over.
  virtual void release() = 0;
};

}  // namespace mailgate
