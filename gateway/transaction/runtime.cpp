#include "gateway/transaction/runtime.h"

namespace mailgate {

std::expected<std::shared_ptr<const Runtime>, std::string> Runtime::make(Config config,
                                                                         std::shared_ptr<const Pipeline> pipeline) {
  auto runtime = std::make_shared<Runtime>();
  runtime->pipeline = std::move(pipeline);
  if (!config.downstream.address) {
    auto maildir = Maildir::open(config.maildir.path);
    if (!maildir) return std::unexpected(config.source + ": maildir.path: " + maildir.error());
    runtime->maildir = std::make_shared<const Maildir>(std::move(*maildir));
  }
  runtime->config = std::make_shared<const Config>(std::move(config));
  return runtime;
}

SessionSettings Runtime::sessionSettings() const {
  SessionSettings settings;
  settings.hostname = config->server.hostname;
  settings.max_recipients = config->server.max_recipients;
  settings.max_message_bytes = pipeline->maxMessageBytes().value_or(0);
  settings.offer_starttls = config->tls.has_value();
  settings.require_tls = config->server.require_tls;
  return settings;
}

}  // namespace mailgate
