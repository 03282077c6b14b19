#include "gateway/relay/relay_target.h"

namespace mailgate {

RelayTarget::~RelayTarget() { release(); }

void RelayTarget::recipient(const Runtime& runtime, const Envelope& envelope, const Path& recipient,
                            RecipientDone done) {
  const Config& config = *runtime.config;
  if (!downstream_ || downstream_->broken()) {
    std::string helo = config.downstream.helo.empty() ? config.server.hostname : config.downstream.helo;
    downstream_ = pool_.acquire(config.downstream, helo);
    config_ = runtime.config;
  }
  downstream_->recipient(envelope.sender, envelope.declared_size, envelope.body, recipient,
                         [done = std::move(done)](const DownstreamAnswer& answer) mutable { done(answer.reply); });
}

void RelayTarget::message(const Runtime&, std::shared_ptr<const OutgoingMessage> message, MessageDone done) {
  if (!downstream_) {
    done({Downstream::unavailable("no connection"), std::nullopt, "no connection"});
    return;
  }
  downstream_->message(std::move(message), [done = std::move(done)](const DownstreamAnswer& answer) mutable {
    done({answer.reply, answer.violating_reply, answer.problem, answer.encrypted});
  });
}

void RelayTarget::reset() {
  if (downstream_) downstream_->reset();
}

void RelayTarget::release() {
  if (!downstream_) return;
  pool_.release(std::move(downstream_), config_->downstream);
  downstream_.reset();
  config_.reset();
}

}  // namespace mailgate
