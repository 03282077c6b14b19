#pragma once
// Builds the Pipeline from the [[stage]] tables. Every stage type the gateway knows is registered
// by name in builtin_stages.cpp, and nowhere else.

#include <expected>
#include <memory>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/pipeline/pipeline.h"

namespace mailgate {

std::expected<std::shared_ptr<const Pipeline>, std::vector<ConfigError>> buildPipeline(const Config& config);
std::vector<std::string_view> builtinStageTypes();

}  // namespace mailgate
