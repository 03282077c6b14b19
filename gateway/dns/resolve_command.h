#pragma once
// `mailgate resolve [--config FILE] NAME [TYPE]`: asks the gateway's own resolver (dns.servers,
// its timeout and retries) and prints what the stages would see, one line per record.

#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/config/config.h"

namespace mailgate {

// TYPE is one of A, AAAA, MX, TXT, PTR, SPF (any case); PTR of an address asks its reverse name
// (questionName). Prints e.g.
//   example.com. TXT "v=spf1 -all"
//   example.com. MX 10 mx.example.com
//   example.com. A: nxdomain
// Returns 0 for ok, nodata and nxdomain (the DNS answered), 1 for servfail, timeout and error,
// 2 for an unknown TYPE.
//
// NAME "-" reads questions from standard input, one "NAME [TYPE]" per line (TYPE defaults to
// `type`), asks them in parallel through one resolver (one cache), and prints the answers in the
// order asked, each as soon as it and those before it are in; the exit code is the worst one.
int runResolveCommand(const Config& config, std::string_view name, std::string_view type);

// The name a question is asked at. PTR records of an address live at its reverse name, so a PTR
// question about an address ("192.0.2.1", "2001:db8::1") goes to "1.2.0.192.in-addr.arpa" or
// the ip6.arpa name, as `dig -x` asks it; any other name is asked as given.
std::string questionName(std::string_view name, uint16_t type);

}  // namespace mailgate
