#include "gateway/net/maildir_target.h"

#include "gateway/uv/thread_pool.h"
#include "gateway/smtp/replies.h"

namespace mailgate {

void MaildirTarget::recipient(const Runtime&, const Envelope&, const Path&, RecipientDone done) { done(std::nullopt); }

void MaildirTarget::message(const Runtime& runtime, std::shared_ptr<const OutgoingMessage> message, MessageDone done) {
  auto maildir = runtime.maildir;
  auto result = std::make_shared<std::expected<std::string, std::string>>();
  queueWork(
      loop_, [maildir, message, result] { *result = maildir->deliver(*message); },
      [result, done = std::move(done)]() mutable {
        if (*result) done({replies::queuedLocally(**result)});
        else done({replies::localDeliveryFailed(), std::nullopt, "maildir: " + result->error()});
      });
}

}  // namespace mailgate
