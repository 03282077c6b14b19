#pragma once
// Whether another process holds a listen address. The workers share each address through
// SO_REUSEPORT, which the kernel also grants to any other process of the same user: a second
// mailgate (a test instance with no stages) started on a live address took a share of the
// connections and let that mail through unfiltered. A probe bound without SO_REUSEPORT cannot
// share, so it fails exactly when someone else listens there.

#include <expected>
#include <string>

#include "gateway/config/config.h"

namespace mailgate {

// Binds and closes a probe socket on `address`; call before the workers bind theirs. The error
// names the address and says it is in use.
std::expected<void, std::string> checkAddressFree(const HostPort& address);

}  // namespace mailgate
