#include "filters/size_limit.h"

namespace mailgate {

std::unique_ptr<Stage> SizeLimitStage::fromSettings(Settings& settings, StageContext&) {
  auto max_bytes = settings.size("max_bytes");
  if (!max_bytes) {
    if (settings.ok()) settings.fail("max_bytes", "is required (e.g. \"25MiB\")");
    return nullptr;
  }
  if (*max_bytes == 0) {
    settings.fail("max_bytes", "must be more than 0");
    return nullptr;
  }
  return std::make_unique<SizeLimitStage>(*max_bytes);
}

Step SizeLimitStage::check(const StageInput& input) const {
  static const Reply too_big = Reply::of(552, "5.3.4", "Error: message size exceeds fixed maximum message size");
  if (input.phase == Phase::MailFrom && input.declared_size && *input.declared_size > max_bytes_) {
    return Verdict::reject(too_big, "declared SIZE " + std::to_string(*input.declared_size) +
                                        " exceeds " + std::to_string(max_bytes_));
  }
  if (input.phase == Phase::EndOfData && input.message_size > max_bytes_) {
    return Verdict::reject(too_big, "message size " + std::to_string(input.message_size) +
                                        " exceeds " + std::to_string(max_bytes_));
  }
  return Verdict::proceed();
}

}  // namespace mailgate
