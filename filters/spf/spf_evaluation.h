#pragma once
// Runs libspf2 for one check over our DNS layer: one SPF_server_t per check (created in a few
// microseconds: a malloc, gethostname() and two tiny compiles), the request, the top-level
// record through the layer's get_spf hook, SPF_record_interpret, and the mapping of its answer
// onto RFC 7208 results.

#include <string>

#include "filters/spf/spf_check.h"
#include "filters/spf/spf_dns_layer.h"
#include "filters/spf/spf_names.h"

namespace mailgate {

struct Spf2Inputs {
  const ClientAddress& client;
  std::string sender;    // "local@domain" of the identity (postmaster@helo for the HELO identity)
  std::string helo;      // for %{h}
  std::string receiver;  // for %{r}
};

struct Spf2Verdict {
  SpfResult result = SpfResult::TempError;
  std::string reason;
  std::string mechanism;  // the matching mechanism, when one matched and it could be told
};

Spf2Verdict evaluateWithLibspf2(SpfDnsLayer& layer, const Spf2Inputs& inputs);

}  // namespace mailgate
