#pragma once
// One DNS answer in libspf2's own shape (SPF_dns_rr_t, spf_dns_rr.h), built the way
// spf_dns_resolv.c builds them: SPF_dns_rr_new_init, then SPF_dns_rr_buf_realloc per record.
// libspf2 takes ownership (it frees answers with SPF_dns_rr_free); until then the RAII handle
// does.

#include <string_view>

#include "gateway/c/spf2.h"

namespace mailgate {

class Spf2Answer {
 public:
  // herrno: NETDB_SUCCESS, HOST_NOT_FOUND, NO_DATA or TRY_AGAIN (<netdb.h>), as libspf2 reads them.
  Spf2Answer(SPF_dns_server_t* server, const char* domain, ns_type type, int herrno);

  void addAddress(const in_addr& address);
  void addAddress(const in6_addr& address);
  void addName(std::string_view name);  // MX exchange or PTR name
  int count() const { return rr_->num_rr; }

  // For the lookup hook's return value; libspf2 frees it.
  SPF_dns_rr_t* release() { return rr_.release(); }

 private:
  void* slot(size_t bytes);
  Spf2DnsRr rr_;
};

// A record-less answer, ready for libspf2.
SPF_dns_rr_t* spf2EmptyAnswer(SPF_dns_server_t* server, const char* domain, ns_type type, int herrno);

}  // namespace mailgate
