#include "gateway/net/shared_state.h"

#include <chrono>
#include <cstdio>

#include "filters/builtin_stages.h"

namespace mailgate {

SessionSettings Runtime::sessionSettings() const {
  SessionSettings settings;
  settings.hostname = config->server.hostname;
  settings.max_recipients = config->server.max_recipients;
  settings.max_message_bytes = pipeline->maxMessageBytes().value_or(0);
  return settings;
}

std::expected<std::shared_ptr<const Runtime>, std::vector<std::string>> makeRuntime(Config config) {
  std::vector<std::string> errors;
  auto pipeline = buildPipeline(config);
  if (!pipeline) {
    for (const auto& error : pipeline.error()) errors.push_back(error.text());
    return std::unexpected(std::move(errors));
  }
  auto runtime = std::make_shared<Runtime>();
  runtime->pipeline = std::move(*pipeline);
  if (!config.downstream.address) {
    auto maildir = Maildir::open(config.maildir.path);
    if (!maildir) return std::unexpected(std::vector<std::string>{config.source + ": maildir.path: " + maildir.error()});
    runtime->maildir = std::move(*maildir);
  }
  runtime->config = std::make_shared<const Config>(std::move(config));
  return runtime;
}

ConnectionLimiter::Verdict ConnectionLimiter::acquire(const std::string& ip, uint32_t max_total,
                                                      uint32_t max_per_client) {
  if (total_.fetch_add(1) >= max_total) {
    total_.fetch_sub(1);
    return Verdict::TooManyTotal;
  }
  std::lock_guard lock(mutex_);
  uint32_t& count = per_client_[ip];
  if (count >= max_per_client) {
    if (count == 0) per_client_.erase(ip);
    total_.fetch_sub(1);
    return Verdict::TooManyFromClient;
  }
  ++count;
  return Verdict::Accepted;
}

void ConnectionLimiter::release(const std::string& ip) {
  {
    std::lock_guard lock(mutex_);
    auto found = per_client_.find(ip);
    if (found != per_client_.end() && --found->second == 0) per_client_.erase(found);
  }
  total_.fetch_sub(1);
}

std::string SharedState::nextSessionId() {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
  char id[32];
  std::snprintf(id, sizeof id, "%08llX%06llX", static_cast<unsigned long long>(seconds) & 0xffffffffULL,
                static_cast<unsigned long long>(sessions_.fetch_add(1)) & 0xffffffULL);
  return id;
}

}  // namespace mailgate
