#pragma once
// clamav: at the end of data, the message is streamed to clamd with INSTREAM
// (filters/clamav/clamd_protocol.h) over a unix socket or TCP, on the session's event loop
// (StageInput::network), so no thread waits on clamd. A virus is refused with
// 554 5.7.0 (on_virus: reject | tempfail | tag); clamd down, timed out, refusing or answering an
// error is handled by on_error (tempfail: 451 4.7.0 | accept | tag). Scanned mail gets
// X-Virus-Scanned (clean) or X-Virus-Status (tagged); incoming fields of these names are removed,
// since only this gateway may vouch for them. A message over max_scan_bytes is scanned in its
// first max_scan_bytes (on_oversize = "scan_prefix") or handled as an error (on_oversize =
// "error"); the log says which. At most max_connections streams to clamd are open at once across
// the gateway; a message past that bound is an error too (clamd queues what it cannot serve, and
// a queue on our side would hold sessions with no bound on how long).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "filters/policy_action.h"
#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class ClamavStage final : public Stage {
 public:
  // clamd's own StreamMaxLength defaults to 25 MiB (clamd.conf(5)); a stream past it gets
  // "INSTREAM size limit exceeded. ERROR". Keep max_scan_bytes at or under the daemon's value.
  static constexpr uint64_t default_max_scan_bytes = 25 * 1024 * 1024;
  // clamd's MaxThreads defaults to 10 and MaxQueue to 100: more open streams than that only wait
  // in clamd's queue.
  static constexpr unsigned default_max_connections = 64;
  // A local clamd accepts at once; one that does not within this long is as good as down.
  static constexpr std::chrono::milliseconds connect_timeout{5000};
  // The octets sent per INSTREAM chunk (clamd reads chunks of any size up to StreamMaxLength).
  static constexpr std::size_t chunk_octets = 64 * 1024;

  enum class Oversize { ScanPrefix, Error };

  struct Policy {
    std::string clamd;  // "/run/clamav/clamd.ctl" or "127.0.0.1:3310"
    PolicyAction on_virus = PolicyAction::Reject;
    PolicyAction on_error = PolicyAction::TempFail;
    uint64_t max_scan_bytes = default_max_scan_bytes;
    Oversize on_oversize = Oversize::ScanPrefix;
    unsigned max_connections = default_max_connections;
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  explicit ClamavStage(Policy policy)
      : policy_(std::move(policy)), open_connections_(std::make_shared<std::atomic<unsigned>>(0)) {}

  std::string_view name() const override { return "clamav"; }
  PhaseMask phases() const override { return phaseBit(Phase::EndOfData); }
  Step check(const StageInput& input) const override;

  // The verdicts, for the stage and its tests.
  static Verdict clean(uint64_t scanned_bytes);
  static Verdict virus(const Policy& policy, const std::string& signature, uint64_t scanned_bytes);
  static Verdict trouble(const Policy& policy, const std::string& why, uint64_t scanned_bytes);

 private:
  Policy policy_;
  // Shared by every session on every loop; a pipeline swapped by SIGHUP starts with its own.
  std::shared_ptr<std::atomic<unsigned>> open_connections_;
};

}  // namespace mailgate
