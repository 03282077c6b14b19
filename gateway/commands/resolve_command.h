#pragma once
// `mailgate resolve [--config FILE] NAME [TYPE]`: asks the gateway's own resolver (dns.servers,
// its timeout and retries) and prints what the stages would see, one line per record.

#include <string_view>

#include "gateway/config/config.h"

namespace mailgate {

// TYPE is one of A, AAAA, MX, TXT, PTR, SPF (any case). Prints e.g.
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

}  // namespace mailgate
