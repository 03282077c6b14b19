#include "filters/spf/spf_evaluation.h"

#include <mutex>

#include "filters/spf/spf_libspf2_record.h"

namespace mailgate {
namespace {

// Our budget is per check (spf_budget.h); libspf2's per-record limits must never fire first —
// its ptr limit even answers permerror where the RFC says "ignore the rest" (defect (f)). The
// layer never hands it more MX or PTR names than SpfLimits allows.
constexpr int kLibspf2NoLimit = 1000;

// libspf2 logs warnings and notes to stderr from inside evaluations (spf_log.c); the outcome
// carries what matters. The error handler stays: it fires only on libspf2's internal asserts.
void quietLibspf2() {
  static std::once_flag once;
  std::call_once(once, [] {
    SPF_warning_handler = nullptr;
    SPF_info_handler = nullptr;
    SPF_debug_handler = nullptr;
  });
}

SpfResult fromLibspf2(SPF_result_t result) {
  switch (result) {
    case SPF_RESULT_PASS: return SpfResult::Pass;
    case SPF_RESULT_FAIL: return SpfResult::Fail;
    case SPF_RESULT_SOFTFAIL: return SpfResult::SoftFail;
    case SPF_RESULT_NEUTRAL: return SpfResult::Neutral;
    case SPF_RESULT_TEMPERROR: return SpfResult::TempError;
    // INVALID, NONE (cannot happen past the top-level record) and PERMERROR: §4.6 permerror.
    default: return SpfResult::PermError;
  }
}

class Libspf2Run {
 public:
  Libspf2Run(SpfDnsLayer& layer, const Spf2Inputs& inputs) : layer_(layer), inputs_(inputs) {}

  Spf2Verdict run() {
    quietLibspf2();
    Spf2Verdict verdict;
    if (!setUp()) {
      verdict.reason = "libspf2 could not be set up";
      return verdict;
    }
    Spf2Response response(SPF_response_new(request_.get()));
    SPF_record_t* raw = nullptr;
    SPF_errcode_t error = SPF_server_get_record(server_.get(), request_.get(), response.get(), &raw);
    Spf2Record record(raw);
    if (error == SPF_E_SUCCESS && !layer_.internalError()) {
      response->spf_record_exp = record.get();
      SPF_record_interpret(record.get(), request_.get(), response.get(), 0);
    }
    if (layer_.internalError()) {
      verdict.reason = "internal error in the SPF DNS layer";
    } else if (!layer_.permError().empty()) {
      verdict.result = SpfResult::PermError;  // our marks override libspf2's answer
      verdict.reason = layer_.permError();
    } else if (error != SPF_E_SUCCESS) {
      // The top-level record could not be had (§4.4, §4.5): none or temperror, never libspf2's
      // "invalid" with an error code (defect (a)).
      verdict.result = layer_.topFailure().value_or(SpfResult::PermError);
      verdict.reason = layer_.topFailure() ? layer_.topFailureReason() : SPF_strerror(error);
    } else {
      describe(*response, verdict);
    }
    return verdict;
  }

 private:
  bool setUp() {
    server_.reset(SPF_server_new_dns(layer_.dnsServer(), 0));
    if (!server_) return false;
    SPF_server_set_rec_dom(server_.get(), inputs_.receiver.c_str());
    SPF_response_t* compile_errors = nullptr;
    // A constant: libspf2 expands its explanation at every fail/softfail/neutral; ours is ours.
    SPF_server_set_explanation(server_.get(), "", &compile_errors);
    Spf2Response discard(compile_errors);
    SPF_server_set_max_dns_mech(server_.get(), kLibspf2NoLimit);
    SPF_server_set_max_dns_mx(server_.get(), kLibspf2NoLimit);
    SPF_server_set_max_dns_ptr(server_.get(), kLibspf2NoLimit);
    request_.reset(SPF_request_new(server_.get()));
    if (!request_) return false;
    if (inputs_.client.family == AF_INET) {
      SPF_request_set_ipv4(request_.get(), inputs_.client.v4);
    } else {
      SPF_request_set_ipv6(request_.get(), inputs_.client.v6);
    }
    if (SPF_request_set_helo_dom(request_.get(), inputs_.helo.c_str()) != SPF_E_SUCCESS) return false;
    if (SPF_request_set_env_from(request_.get(), inputs_.sender.c_str()) != 0) return false;
    // What SPF_request_prepare does, without SPF_request_query_mailfrom's "free ride" for
    // loopback clients (a pass for 127.0.0.0/8 and ::1 whatever the record says).
    request_->cur_dom = request_->env_from_dp;
    return request_->cur_dom != nullptr;
  }

  void describe(const SPF_response_t& response, Spf2Verdict& verdict) {
    verdict.result = fromLibspf2(response.result);
    if (verdict.result == SpfResult::TempError) {
      verdict.reason = layer_.tempError().empty() ? SPF_strerror(response.err) : layer_.tempError();
      return;
    }
    if (verdict.result == SpfResult::PermError) {
      verdict.reason = SPF_strerror(response.err);
      return;
    }
    const auto& deciding = layer_.decidingRecord();
    std::string where = deciding && deciding->domain != request_->env_from_dp ? " in the record of " + deciding->domain : "";
    if (response.reason != SPF_REASON_MECH) {
      verdict.reason = "no mechanism matched" + where + " (default neutral, RFC 7208 §4.7)";
      return;
    }
    verdict.mechanism = matchingMechanism(response.result);
    verdict.reason = verdict.mechanism.empty() ? "a mechanism matched" + where
                                               : "mechanism " + verdict.mechanism + " matched" + where;
  }

  // libspf2 does not say which mechanism matched. Evaluating the deciding record's first k
  // mechanisms again — answered from the check's cache, counting nothing — tells: the smallest
  // k that matches with the same result is the one (binary search: a few µs per step).
  std::string matchingMechanism(SPF_result_t result) {
    const auto& deciding = layer_.decidingRecord();
    if (!deciding || deciding->record.mechanisms.empty()) return {};
    std::string domain = deciding->domain;
    request_->cur_dom = domain.c_str();
    layer_.setReplay(true);
    size_t low = 1;
    size_t high = deciding->record.mechanisms.size();
    bool found = matches(deciding->record, high, result);
    while (found && low < high) {
      size_t middle = low + (high - low) / 2;
      if (matches(deciding->record, middle, result)) {
        high = middle;
      } else {
        low = middle + 1;
      }
    }
    layer_.setReplay(false);
    request_->cur_dom = request_->env_from_dp;
    return found ? deciding->record.mechanisms[high - 1].text : std::string();
  }

  bool matches(const SpfRecord& record, size_t mechanisms, SPF_result_t result) {
    Libspf2Record text = recordForLibspf2(record, inputs_.client.family, mechanisms);
    if (!text.text) return false;
    Spf2Response response(SPF_response_new(request_.get()));
    SPF_record_t* raw = nullptr;
    SPF_errcode_t error = SPF_record_compile(server_.get(), response.get(), &raw, text.text->c_str());
    Spf2Record compiled(raw);
    if (error != SPF_E_SUCCESS) return false;
    response->spf_record_exp = compiled.get();
    SPF_record_interpret(compiled.get(), request_.get(), response.get(), 0);
    return response->reason == SPF_REASON_MECH && response->result == result;
  }

  SpfDnsLayer& layer_;
  const Spf2Inputs& inputs_;
  Spf2Server server_;
  Spf2Request request_;
};

}  // namespace

Spf2Verdict evaluateWithLibspf2(SpfDnsLayer& layer, const Spf2Inputs& inputs) {
  return Libspf2Run(layer, inputs).run();
}

}  // namespace mailgate
