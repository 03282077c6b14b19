#include "filters/spf/spf_dns_layer.h"

#include <algorithm>

#include "filters/spf/spf_dns_answer.h"
#include "filters/spf/spf_libspf2_record.h"

namespace mailgate {
namespace {

std::string failureText(const DnsRecordSet& records) {
  const char* status = "error";
  switch (records.status) {
    case DnsStatus::Ok: status = "ok"; break;
    case DnsStatus::NoData: status = "no records"; break;
    case DnsStatus::NxDomain: status = "NXDOMAIN"; break;
    case DnsStatus::ServFail: status = "dns servfail"; break;
    case DnsStatus::Timeout: status = "dns timeout"; break;
    case DnsStatus::Error: status = "dns error"; break;
  }
  return records.error.empty() ? status : std::string(status) + " (" + records.error + ")";
}

bool isVoid(DnsStatus status) { return status == DnsStatus::NoData || status == DnsStatus::NxDomain; }

bool hasData(const DnsRecordSet& records, uint16_t type) {
  if (records.status != DnsStatus::Ok) return false;
  if (type == dns_type::MX) return !records.mx.empty();
  if (type == dns_type::PTR) return !records.names.empty();
  return !records.addresses.empty();
}

}  // namespace

SpfDnsLayer::SpfDnsLayer(const DnsLookup& dns, const SpfLimits& limits, const ClientAddress& client)
    : dns_(dns), limits_(limits), client_(client), budget_(limits) {
  server_.destroy = nullptr;  // owned here, never by libspf2 (SPF_dns_free skips it)
  server_.lookup = &SpfDnsLayer::lookupHook;
  server_.get_spf = &SpfDnsLayer::getSpfHook;
  server_.get_exp = nullptr;  // records reach libspf2 without exp=: it never asks
  server_.add_cache = nullptr;
  server_.layer_below = nullptr;
  server_.name = "mailgate";
  server_.debug = 0;
  server_.hook = this;
}

SPF_dns_rr_t* SpfDnsLayer::lookupHook(SPF_dns_server_t* server, const char* domain, ns_type type,
                                      int should_cache) noexcept {
  auto* layer = static_cast<SpfDnsLayer*>(server->hook);
  try {
    return layer->answer(domain, type, should_cache != 0);
  } catch (...) {  // nothing may unwind through libspf2's C frames
    layer->internal_error_ = true;
    return spf2EmptyAnswer(server, domain, type, TRY_AGAIN);
  }
}

SPF_errcode_t SpfDnsLayer::getSpfHook(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                                      SPF_record_t** recordp) noexcept {
  auto* layer = static_cast<SpfDnsLayer*>(server->resolver->hook);
  try {
    return layer->fetchRecord(server, request, response, recordp);
  } catch (...) {
    layer->internal_error_ = true;
    return SPF_E_INTERNAL_ERROR;
  }
}

void SpfDnsLayer::markPermError(std::string reason) {
  if (perm_error_.empty()) perm_error_ = std::move(reason);
}

const DnsRecordSet& SpfDnsLayer::query(const std::string& name, uint16_t type, bool outside_terms) {
  static const DnsRecordSet refused = [] {
    DnsRecordSet records;
    records.status = DnsStatus::Error;
    records.error = "not queried";
    return records;
  }();
  auto key = std::make_pair(toLower(name), type);
  if (auto found = cache_.find(key); found != cache_.end()) return found->second;
  if (replay_) return refused;
  std::string error;
  if (!budget_.countQuery(error)) {
    if (!outside_terms) markPermError(std::move(error));
    return refused;
  }
  return cache_.emplace(std::move(key), dns_.query(name, type)).first->second;
}

DnsRecordSet SpfDnsLayer::queryOutsideTerms(const std::string& name, uint16_t type) {
  return query(name, type, true);
}

SPF_dns_rr_t* SpfDnsLayer::answer(const char* domain, ns_type type, bool should_cache) {
  if (domain == nullptr) domain = "";
  if (!perm_error_.empty() || internal_error_) return spf2EmptyAnswer(&server_, domain, type, TRY_AGAIN);
  auto qtype = static_cast<uint16_t>(type);
  if (qtype != dns_type::A && qtype != dns_type::AAAA && qtype != dns_type::MX && qtype != dns_type::PTR) {
    return spf2EmptyAnswer(&server_, domain, type, NO_DATA);  // TXT is fetched by get_spf only
  }
  std::string_view raw(domain);
  bool zero_cidr = raw.ends_with(kZeroCidrMarker);
  if (zero_cidr) raw.remove_suffix(kZeroCidrMarker.size());
  LookupRole role = budget_.classify(qtype, domain, should_cache);
  std::string error;
  if (role == LookupRole::Term && !replay_ && !budget_.countTerm(error)) {
    markPermError(std::move(error));
    return spf2EmptyAnswer(&server_, domain, type, TRY_AGAIN);
  }
  std::optional<std::string> name = queryName(raw);
  if (!name) return spf2EmptyAnswer(&server_, domain, type, HOST_NOT_FOUND);  // cannot exist (spf_names.h)
  const DnsRecordSet& records = query(*name, qtype);
  if (!perm_error_.empty()) return spf2EmptyAnswer(&server_, domain, type, TRY_AGAIN);

  if (records.status == DnsStatus::Ok || isVoid(records.status)) {
    if (!hasData(records, qtype)) {
      if (role == LookupRole::Term && !replay_ && !budget_.countVoid(error)) {
        markPermError(std::move(error));
        return spf2EmptyAnswer(&server_, domain, type, TRY_AGAIN);
      }
      return spf2EmptyAnswer(&server_, domain, type,
                             records.status == DnsStatus::NxDomain ? HOST_NOT_FOUND : NO_DATA);
    }
    if (qtype == dns_type::MX || qtype == dns_type::PTR) {
      return nameAnswer(domain, *name, type, records, role, should_cache, zero_cidr);
    }
    return addressAnswer(domain, type, records, zero_cidr);
  }
  // RFC 7208 §5.5: a DNS error on the PTR lookup makes ptr not match, and one on the address
  // lookup of a PTR name skips that name — not temperror (libspf2 says temperror).
  bool ptr_path = qtype == dns_type::PTR || role == LookupRole::PtrAddress || role == LookupRole::PtrMacroAddress;
  if (ptr_path) return spf2EmptyAnswer(&server_, domain, type, NO_DATA);
  if (temp_error_.empty()) temp_error_ = *name + " " + dnsTypeName(qtype) + ": " + failureText(records);
  return spf2EmptyAnswer(&server_, domain, type, TRY_AGAIN);
}

SPF_dns_rr_t* SpfDnsLayer::addressAnswer(const char* domain, ns_type type, const DnsRecordSet& records,
                                         bool zero_cidr) {
  Spf2Answer answer(&server_, domain, type, NETDB_SUCCESS);
  bool v4 = static_cast<uint16_t>(type) == dns_type::A;
  for (const std::string& text : records.addresses) {
    in_addr address4{};
    in6_addr address6{};
    if (v4 ? inet_pton(AF_INET, text.c_str(), &address4) != 1 : inet_pton(AF_INET6, text.c_str(), &address6) != 1) {
      continue;
    }
    if (zero_cidr) {
      // A /0 length matches as soon as any address of the family exists (§5.3): answer with
      // the client's own, which libspf2 then compares at full length (spf_libspf2_record.h).
      if (v4 != (client_.family == AF_INET)) break;
      if (v4) {
        answer.addAddress(client_.v4);
      } else {
        answer.addAddress(client_.v6);
      }
      break;
    }
    if (v4) {
      answer.addAddress(address4);
    } else {
      answer.addAddress(address6);
    }
  }
  if (answer.count() == 0) return spf2EmptyAnswer(&server_, domain, type, NO_DATA);
  return answer.release();
}

SPF_dns_rr_t* SpfDnsLayer::nameAnswer(const char* domain, const std::string& name, ns_type type,
                                      const DnsRecordSet& records, LookupRole role, bool should_cache,
                                      bool zero_cidr) {
  std::vector<std::string> names;
  if (static_cast<uint16_t>(type) == dns_type::MX) {
    auto exchanges = records.mx;
    std::stable_sort(exchanges.begin(), exchanges.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [preference, exchange] : exchanges) {
      if (exchange.empty() || exchange == ".") continue;  // RFC 7505 null MX: nothing to look up
      names.push_back(exchange);
    }
    if (names.size() > limits_.mx_names) {
      markPermError("more than " + std::to_string(limits_.mx_names) + " MX names at " + name + " (RFC 7208 §4.6.4)");
      return spf2EmptyAnswer(&server_, domain, type, TRY_AGAIN);
    }
    for (std::string& exchange : names) {
      if (zero_cidr) exchange += kZeroCidrMarker;
    }
    budget_.expectAddresses(names, LookupRole::MxAddress, should_cache);
  } else {
    // PTR names come from whoever controls the client's reverse zone: only host names that can
    // exist are kept, so nothing odd (no \x01, see kZeroCidrMarker) reaches %{p}. More than
    // ptr_names are ignored (§4.6.4), where libspf2 would answer permerror (defect (f)).
    for (const std::string& ptr : records.names) {
      auto host = queryName(ptr);
      if (!host || host->find(' ') != std::string::npos) continue;
      names.push_back(*host);
      if (names.size() == limits_.ptr_names) break;
    }
    budget_.expectAddresses(names, role == LookupRole::Term ? LookupRole::PtrAddress : LookupRole::PtrMacroAddress,
                            should_cache);
  }
  if (names.empty()) return spf2EmptyAnswer(&server_, domain, type, NO_DATA);
  Spf2Answer answer(&server_, domain, type, NETDB_SUCCESS);
  for (const std::string& each : names) answer.addName(each);
  return answer.release();
}

SPF_errcode_t SpfDnsLayer::noRecord(bool top, const std::string& name, const std::string& why, SPF_errcode_t code) {
  if (top) {
    top_failure_ = SpfResult::None;
    top_failure_reason_ = "no SPF record at " + name + " (" + why + ")";
  } else if (!replay_) {
    // An include or redirect target without a record is permerror (§5.2, §6.1).
    markPermError("include/redirect target " + name + " has no SPF record (" + why + ")");
  }
  return code;
}

SPF_errcode_t SpfDnsLayer::compile(SPF_server_t* server, SPF_response_t* response, SPF_record_t** recordp,
                                   const std::string& name, std::string_view text) {
  std::string terminated(text);
  SPF_errcode_t error = SPF_record_compile(server, response, recordp, terminated.c_str());
  if (error != SPF_E_SUCCESS) {
    if (*recordp != nullptr) SPF_record_free(*recordp);
    *recordp = nullptr;
    markPermError(name + ": libspf2 refused the record (" + SPF_strerror(error) + ")");
  }
  return error;
}

SPF_errcode_t SpfDnsLayer::fetchRecord(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                                       SPF_record_t** recordp) {
  *recordp = nullptr;
  const bool top = !top_seen_;
  top_seen_ = true;
  bool redirect_of_top = false;
  if (top) {
    top_response_ = response;
  } else {
    if (!perm_error_.empty() || internal_error_) return SPF_E_BIG_DNS;
    std::string error;
    if (!replay_ && !budget_.countTerm(error)) {
      markPermError(std::move(error));
      return SPF_E_BIG_DNS;
    }
    // The top-level chain evaluates with the top-level response; an include's record gets a
    // fresh one (spf_interpret.c). libspf2 walks a record's includes in order and its redirect
    // last, so the calls from the deciding record are its includes, then its redirect.
    if (!replay_ && response == top_response_ && deciding_) {
      auto includes = std::count_if(deciding_->record.mechanisms.begin(), deciding_->record.mechanisms.end(),
                                    [](const SpfMechanism& m) { return m.kind == SpfMechanismKind::Include; });
      if (deciding_includes_seen_ < static_cast<size_t>(includes)) {
        ++deciding_includes_seen_;
      } else {
        redirect_of_top = true;
      }
    }
  }
  std::string domain = request->cur_dom != nullptr ? request->cur_dom : "";
  std::optional<std::string> name = queryName(domain);
  if (!name) return noRecord(top, domain, "not a valid domain name", SPF_E_NOT_SPF);
  if (!top) {
    // libspf2 makes the raw expansion of the include/redirect domain-spec the current domain
    // (spf_interpret.c: cur_dom = lookup = buf, a buffer it malloc'd and frees after this
    // evaluation). The domain is that expansion without a trailing dot, truncated on the left
    // to 253 octets (§7.3) — and %{d} in the target record must see exactly that: with the dot,
    // "%{d}.x" has an empty label; untruncated, every level multiplies the length of the next
    // (a redirect= of 37 "%{d}" passed 1 GB within six levels: found by spf_fuzz). The name is
    // a suffix of the buffer, so the pointer moves into it and the dot is cut off in place.
    char* current = const_cast<char*>(request->cur_dom);
    size_t end = domain.size() - (domain.back() == '.' ? 1 : 0);
    current[end] = '\0';
    request->cur_dom = current + (end - name->size());
  }
  const DnsRecordSet& records = query(*name, dns_type::TXT);
  if (!perm_error_.empty()) return SPF_E_BIG_DNS;
  if (records.status != DnsStatus::Ok && !isVoid(records.status)) {
    if (temp_error_.empty()) temp_error_ = *name + " TXT: " + failureText(records);
    if (top) {
      top_failure_ = SpfResult::TempError;
      top_failure_reason_ = temp_error_;
    }
    return SPF_E_DNS_ERROR;
  }
  if (records.status != DnsStatus::Ok || records.txt.empty()) {
    std::string error;
    if (!top && !replay_ && !budget_.countVoid(error)) {
      markPermError(std::move(error));
      return SPF_E_BIG_DNS;
    }
    return noRecord(top, *name, failureText(records), SPF_E_NOT_SPF);
  }
  std::vector<std::string_view> selected = selectSpfRecords(records.txt);
  if (selected.empty()) return noRecord(top, *name, "no \"v=spf1\" TXT record", SPF_E_NOT_SPF);
  if (selected.size() > 1) {
    markPermError(*name + ": more than one SPF record (RFC 7208 §4.5)");
    return SPF_E_MULTIPLE_RECORDS;
  }
  SpfParseResult parsed = parseSpfRecord(selected.front());
  if (!parsed.record) {
    markPermError(*name + ": " + parsed.error);
    return SPF_E_SYNTAX;
  }
  Libspf2Record text = recordForLibspf2(*parsed.record, client_.family);
  if (!text.text) {
    markPermError(*name + ": " + text.error);
    return SPF_E_BIG_MECH;
  }
  SPF_errcode_t error = compile(server, response, recordp, *name, *text.text);
  if (error != SPF_E_SUCCESS) return error;
  if (!replay_ && (top || redirect_of_top)) {
    deciding_ = EvaluatedRecord{*name, std::move(*parsed.record)};
    deciding_includes_seen_ = 0;
  }
  return SPF_E_SUCCESS;
}

}  // namespace mailgate
