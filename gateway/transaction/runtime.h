#pragma once
// One immutable snapshot of what governs a transaction: the configuration, the pipeline built
// from it, and the Maildir when there is no downstream. A reload (SIGHUP) makes a new one; each
// transaction keeps the snapshot it started with, so its rules never change under it.

#include <expected>
#include <memory>
#include <string>

#include "gateway/config/config.h"
#include "gateway/delivery/maildir.h"
#include "gateway/pipeline/pipeline.h"
#include "gateway/smtp/smtp_session.h"

namespace mailgate {

struct Runtime {
  std::shared_ptr<const Config> config;
  std::shared_ptr<const Pipeline> pipeline;
  std::shared_ptr<const Maildir> maildir;  // set when no downstream is configured

  // Opens the Maildir when the configuration has no downstream; the error names the key.
  static std::expected<std::shared_ptr<const Runtime>, std::string> make(Config config,
                                                                         std::shared_ptr<const Pipeline> pipeline);
  SessionSettings sessionSettings() const;
};

}  // namespace mailgate
