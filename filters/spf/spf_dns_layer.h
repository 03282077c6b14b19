#pragma once
// The SPF_dns_server_t that libspf2 uses for one check (spf_dns.h: lookup, get_spf, …, hook).
// It answers every lookup libspf2 makes from our DnsLookup, and its get_spf hook (called by
// SPF_server_get_record for the top-level record, every include and every redirect) fetches
// the TXT records itself, selects the SPF record (§4.5), validates it strictly (spf_record.h)
// and compiles the text written by spf_libspf2_record.h — so libspf2 never sees a record we
// did not check. It keeps the per-check budget (spf_budget.h) and a per-check cache; when a
// limit is passed it marks the check permerror and answers every later lookup with TRY_AGAIN
// so that libspf2 stops at once (the mark then decides the result).

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "gateway/c/spf2.h"
#include "filters/spf/spf_budget.h"
#include "filters/spf/spf_check.h"
#include "filters/spf/spf_names.h"
#include "filters/spf/spf_record.h"

namespace mailgate {

struct EvaluatedRecord {
  std::string domain;  // the name the record was fetched from
  SpfRecord record;
};

class SpfDnsLayer {
 public:
  SpfDnsLayer(const DnsLookup& dns, const SpfLimits& limits, const ClientAddress& client);
  SpfDnsLayer(const SpfDnsLayer&) = delete;
  SpfDnsLayer& operator=(const SpfDnsLayer&) = delete;

  SPF_dns_server_t* dnsServer() { return &server_; }

  // Set when the check must be permerror (validator, budget, record selection, …).
  const std::string& permError() const { return perm_error_; }
  // The DNS failure that made libspf2 answer temperror, e.g. "ip8.example.com TXT: timeout".
  const std::string& tempError() const { return temp_error_; }
  // How the top-level record lookup ended when it gave no record: None, TempError or PermError.
  std::optional<SpfResult> topFailure() const { return top_failure_; }
  const std::string& topFailureReason() const { return top_failure_reason_; }
  // The record whose mechanisms decided: the top-level one, or the last redirect target of the
  // top-level chain (includes never decide: §5.2). Its exp= gives the explanation (§6.2).
  const std::optional<EvaluatedRecord>& decidingRecord() const { return deciding_; }
  unsigned queries() const { return budget_.queries(); }
  // An exception (out of memory) stopped a hook: the check cannot be trusted.
  bool internalError() const { return internal_error_; }

  // Replay: answer from the cache only, count nothing, keep the deciding record (used to find
  // which mechanism matched by evaluating its prefixes again, spf_evaluation.cpp).
  void setReplay(bool replay) { replay_ = replay; }

  // A query for the explanation (§6.2): cached, within the query cap, never a permerror.
  DnsRecordSet queryOutsideTerms(const std::string& name, uint16_t type);

 private:
  static SPF_dns_rr_t* lookupHook(SPF_dns_server_t* server, const char* domain, ns_type type,
                                  int should_cache) noexcept;
  static SPF_errcode_t getSpfHook(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                                  SPF_record_t** recordp) noexcept;

  SPF_dns_rr_t* answer(const char* domain, ns_type type, bool should_cache);
  SPF_errcode_t fetchRecord(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                            SPF_record_t** recordp);
  SPF_errcode_t noRecord(bool top, const std::string& name, const std::string& why, SPF_errcode_t code);
  SPF_errcode_t compile(SPF_server_t* server, SPF_response_t* response, SPF_record_t** recordp,
                        const std::string& name, std::string_view text);
  // Cached; counts toward the query cap (past it: marks permerror unless `outside_terms`).
  const DnsRecordSet& query(const std::string& name, uint16_t type, bool outside_terms = false);
  SPF_dns_rr_t* addressAnswer(const char* domain, ns_type type, const DnsRecordSet& records, bool zero_cidr);
  SPF_dns_rr_t* nameAnswer(const char* domain, const std::string& name, ns_type type, const DnsRecordSet& records,
                           LookupRole role, bool should_cache, bool zero_cidr);
  void markPermError(std::string reason);

  const DnsLookup& dns_;
  SpfLimits limits_;
  const ClientAddress& client_;
  SPF_dns_server_t server_{};
  SpfBudget budget_;
  std::map<std::pair<std::string, uint16_t>, DnsRecordSet> cache_;
  std::string perm_error_;
  std::string temp_error_;
  std::optional<SpfResult> top_failure_;
  std::string top_failure_reason_;
  bool replay_ = false;
  bool internal_error_ = false;
  bool top_seen_ = false;
  const SPF_response_t* top_response_ = nullptr;
  std::optional<EvaluatedRecord> deciding_;
  size_t deciding_includes_seen_ = 0;
};

}  // namespace mailgate
