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

}  // namespace mailgate
