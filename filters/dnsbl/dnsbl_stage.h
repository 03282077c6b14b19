#pragma once
// dnsbl: DNS block and allow lists (RFC 5782), scored the way Postfix's postscreen scores them.
// The client's address is looked up in `zones` at connect, every zone at once; with `rhs_zones`,
// the HELO name at HELO and the envelope sender's domain at MAIL; with `uri_zones`, the registered
// domains of the message's links at the end of data. Each listing adds its zone's weight (negative
// for allow lists); at or over `threshold` the mail is refused with 554 5.7.1, naming the listing
// of the highest weight and the list's TXT text. `decide = "rcpt"` (default) refuses at each RCPT,
// so that the record has the envelope and the greeting never waits for DNS; `decide = "connect"`
// waits for the client's lists and refuses the greeting. A list that times out or fails counts
// as not listed (fail open) and is logged; answers outside 127.0.0.0/8 are ignored.

#include <memory>
#include <string>
#include <vector>

#include "filters/dnsbl/dnsbl_lookup.h"
#include "filters/dnsbl/dnsbl_zone.h"
#include "filters/stage_context.h"
#include "gateway/pipeline/stage.h"

namespace mailgate {

class DnsblStage final : public Stage {
 public:
  struct Policy {
    std::vector<DnsblZone> zones;      // the client's address
    std::vector<DnsblZone> rhs_zones;  // the HELO name and the sender's domain
    std::vector<DnsblZone> uri_zones;  // the registered domains of the message's links
    int threshold = 1;                 // postscreen_dnsbl_threshold
    bool decide_at_connect = false;
    // A message's distinct link domains looked up (each in every uri zone); the rest are not.
    std::size_t max_uri_domains = 20;
    // How long one zone's answer is waited for before it counts as not listed.
    Duration lookup_timeout = std::chrono::seconds(10);
  };

  static std::unique_ptr<Stage> fromSettings(Settings& settings, StageContext& context);
  DnsblStage(std::shared_ptr<const DnsLookup> dns, Policy policy);

  std::string_view name() const override { return "dnsbl"; }
  PhaseMask phases() const override { return phases_; }
  Step check(const StageInput& input) const override;

  // The verdict on these answers (pure: unit-tested on its own).
  static Verdict decide(const std::vector<ZoneAnswer>& answers, int threshold);

 private:
  std::shared_ptr<LookupBatch> lookUp(const StageInput& input, const std::vector<DnsblZone>& zones, ListedThing thing,
                                      const std::string& item, const std::string& prefix) const;
  Step startUriLookups(const StageInput& input) const;
  // The verdict once every batch is settled: at once, or through a Deferred.
  Step decideWhenSettled(std::vector<std::shared_ptr<LookupBatch>> batches, std::shared_ptr<bool> decided) const;

  std::shared_ptr<const DnsLookup> dns_;
  Policy policy_;
  PhaseMask phases_ = 0;
};

}  // namespace mailgate
