#pragma once
// Delivery into the embedded Maildir (no downstream configured): every recipient the pipeline
// passed is taken, and the message is written and fsynced on the thread pool before the client
// hears 250.

#include <uv.h>

#include "gateway/transaction/delivery_target.h"

namespace mailgate {

class MaildirTarget final : public DeliveryTarget {
 public:
  explicit MaildirTarget(uv_loop_t* loop) : loop_(loop) {}

  void recipient(const Runtime& runtime, const Envelope& envelope, const Path& recipient, RecipientDone done) override;
  void message(const Runtime& runtime, std::shared_ptr<const OutgoingMessage> message, MessageDone done) override;
  void reset() override {}
  void release() override {}

 private:
  uv_loop_t* loop_;
};

}  // namespace mailgate
