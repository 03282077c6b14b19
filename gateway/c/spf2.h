#pragma once
// The one place libspf2 is included (design.md §5 habit 2), with its handles wrapped once.
// Debian's spf2/spf.h uses struct in_addr/in6_addr and ns_type without including their headers,
// so <netinet/in.h>, <arpa/inet.h> and <arpa/nameser.h> come first. Its headers are old C:
// their warnings are silenced here only, around the include.

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wcast-qual"
extern "C" {
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <spf2/spf_dns_rr.h>
}
#pragma GCC diagnostic pop

#include "gateway/util/c_free.h"

namespace mailgate {

using Spf2Server = std::unique_ptr<SPF_server_t, CFree<&SPF_server_free>>;
using Spf2Request = std::unique_ptr<SPF_request_t, CFree<&SPF_request_free>>;
using Spf2Response = std::unique_ptr<SPF_response_t, CFree<&SPF_response_free>>;
using Spf2Record = std::unique_ptr<SPF_record_t, CFree<&SPF_record_free>>;
using Spf2DnsRr = std::unique_ptr<SPF_dns_rr_t, CFree<&SPF_dns_rr_free>>;

}  // namespace mailgate
