#pragma once
// libopendmarc through one door (design.md §5): its header needs the socket types first, and
// opendmarc_get_tld (the organizational domain from the public suffix list, RFC 7489 §3.2) is
// exported by the library but missing from the header.

#include <netinet/in.h>
#include <sys/param.h>
#include <sys/types.h>

#include <opendmarc/dmarc.h>

extern "C" int opendmarc_get_tld(u_char* domain, u_char* tld, size_t tld_len);
