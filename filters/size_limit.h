#pragma once
// size_limit: messages over max_bytes are refused with 552 5.3.4 (RFC 1870 §6.1, RFC 3463
// 5.3.4) — at MAIL when the client declares SIZE=, else at the end of DATA. The stage only names
// the limit: the SMTP session advertises it in EHLO and enforces it in one place, while DATA
// arrives, so an oversized message is read and dropped, never held whole.

#include <cstdint>
#include <memory>

#include "filters/stage_context.h"
#include "gateway/config/config.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class SizeLimitStage final : public Stage {
 public:
  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  explicit SizeLimitStage(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  std::string_view name() const override { return "size_limit"; }
  PhaseMask phases() const override { return 0; }
  Step check(const StageInput&) const override { return Verdict::proceed(); }
  std::optional<uint64_t> maxMessageBytes() const override { return max_bytes_; }

 private:
  uint64_t max_bytes_;
};

}  // namespace mailgate
