#pragma once
// Delivery to the downstream mailbox server for one client session: the downstream connection is
// taken from the worker's pool at the session's first accepted recipient, each RCPT is relayed
// (the downstream's own reply is the client's), the message goes after the content stages passed,
// and the connection goes back to the pool when the session ends.

#include <memory>

#include "gateway/relay/downstream.h"
#include "gateway/relay/downstream_pool.h"
#include "gateway/transaction/delivery_target.h"

namespace mailgate {

class RelayTarget final : public DeliveryTarget {
 public:
  explicit RelayTarget(DownstreamPool& pool) : pool_(pool) {}
  ~RelayTarget() override;

  void recipient(const Runtime& runtime, const Envelope& envelope, const Path& recipient, RecipientDone done) override;
  void message(const Runtime& runtime, std::shared_ptr<const OutgoingMessage> message, MessageDone done) override;
  void reset() override;
  void release() override;

 private:
  DownstreamPool& pool_;
  std::shared_ptr<Downstream> downstream_;
  std::shared_ptr<const Config> config_;  // of the transaction that opened the connection
};

}  // namespace mailgate
