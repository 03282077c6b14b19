#include "filters/builtin_stages.h"

#include <functional>

#include "filters/dkim/dkim_stage.h"
#include "filters/dmarc/dmarc_stage.h"
#include "filters/rules/rules_stage.h"
#include "filters/size_limit.h"
#include "filters/spf/spf_stage.h"
#include "filters/stage_context.h"

namespace mailgate {
namespace {

// A factory reads its own keys from the stage's table and reports problems there; it returns
// nullptr when it could not build the stage.
using StageFactory = std::unique_ptr<Stage> (*)(Settings&, StageContext&);

struct Registration {
  std::string_view type;
  StageFactory factory;
};

constexpr Registration registry[] = {
    {"size_limit", &SizeLimitStage::fromSettings},
    {"spf", &SpfStage::fromSettings},
    {"dkim", &DkimStage::fromSettings},
    {"dmarc", &DmarcStage::fromSettings},
    {"rules", &RulesStage::fromSettings},
};

// A stage that never answers becomes a tempfail after this long (Haraka's plugin timeout).
constexpr Duration default_stage_timeout = std::chrono::seconds(30);

}  // namespace

std::vector<std::string_view> builtinStageTypes() {
  std::vector<std::string_view> types;
  for (const auto& entry : registry) types.push_back(entry.type);
  return types;
}

std::expected<std::shared_ptr<const Pipeline>, std::vector<ConfigError>> buildPipeline(const Config& config) {
  std::vector<ConfigError> errors;
  std::vector<PipelineStage> stages;
  StageContext context(config);
  // dmarc decides on what spf and dkim found (RFC 7489 §4.2): without both before it, mail that
  // one of them would pass fails DMARC, and a p=reject domain's mail is refused.
  bool spf_before = false, dkim_before = false;
  for (const StageSpec& spec : config.stages) {
    if (spec.type == "dmarc" && !(spf_before && dkim_before)) {
      std::string missing = std::string(spf_before ? "" : "spf") + (spf_before || dkim_before ? "" : ", ") +
                            (dkim_before ? "" : "dkim");
      spec.settings->fail("type", "the dmarc stage must come after the spf stage and the dkim stage (it decides "
                                  "on their results); missing before it: " + missing);
    }
    spf_before = spf_before || spec.type == "spf";
    dkim_before = dkim_before || spec.type == "dkim";
  }
  for (const StageSpec& spec : config.stages) {
    Settings& settings = *spec.settings;
    const Registration* found = nullptr;
    for (const auto& entry : registry)
      if (entry.type == spec.type) found = &entry;
    if (found == nullptr) {
      std::string known;
      for (const auto& entry : registry) known += (known.empty() ? "" : ", ") + std::string(entry.type);
      settings.fail("type", "unknown stage type \"" + spec.type + "\" (known: " + known + ")");
      for (auto& error : settings.finish()) errors.push_back(std::move(error));
      continue;
    }
    Duration timeout = settings.duration("timeout").value_or(default_stage_timeout);
    std::unique_ptr<Stage> stage = found->factory(settings, context);
    auto stage_errors = settings.finish();
    if (!stage_errors.empty() || !stage) {
      for (auto& error : stage_errors) errors.push_back(std::move(error));
      continue;
    }
    stages.push_back(PipelineStage{std::move(stage), spec.mode, timeout});
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return Pipeline::make(std::move(stages));
}

}  // namespace mailgate
