#include "filters/spf/spf_dns_answer.h"

#include <cstdlib>
#include <cstring>

namespace mailgate {

Spf2Answer::Spf2Answer(SPF_dns_server_t* server, const char* domain, ns_type type, int herrno)
    : rr_(SPF_dns_rr_new_init(server, domain, type, 0, herrno)) {
  // Out of memory: libspf2 itself aborts when a layer returns no answer (SPF_dns_lookup).
  if (!rr_) std::abort();
}

void* Spf2Answer::slot(size_t bytes) {
  int index = rr_->num_rr;
  if (SPF_dns_rr_buf_realloc(rr_.get(), index, bytes) != SPF_E_SUCCESS) std::abort();
  ++rr_->num_rr;
  return rr_->rr[index];
}

void Spf2Answer::addAddress(const in_addr& address) {
  std::memcpy(slot(sizeof address), &address, sizeof address);
}

void Spf2Answer::addAddress(const in6_addr& address) {
  std::memcpy(slot(sizeof address), &address, sizeof address);
}

void Spf2Answer::addName(std::string_view name) {
  auto* text = static_cast<char*>(slot(name.size() + 1));
  std::memcpy(text, name.data(), name.size());
  text[name.size()] = '\0';
}

SPF_dns_rr_t* spf2EmptyAnswer(SPF_dns_server_t* server, const char* domain, ns_type type, int herrno) {
  return Spf2Answer(server, domain, type, herrno).release();
}

}  // namespace mailgate
