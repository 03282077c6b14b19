#include "filters/spf/spf_stage.h"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>

#include "filters/auth_facts.h"
#include "filters/header_text.h"
#include "gateway/util/ip_address.h"
#include "gateway/pipeline/pipeline.h"

namespace mailgate {
namespace {

constexpr std::array<const char*, 7> policy_keys{"on_none",     "on_neutral",   "on_pass",     "on_fail",
                                                 "on_softfail", "on_temperror", "on_permerror"};

// The check's result: computed on a pool thread, settled on the loop when that job is done (or
// timed out), and handed to the RCPT phase — at once, or through a Deferred that holds no thread.
struct PendingCheck {
  SpfRequest request;
  std::mutex mutex;
  std::optional<SpfOutcome> outcome;  // first writer wins: the job, or the loop at its timeout
  bool settled = false;               // loop only
  std::vector<std::move_only_function<void()>> waiters;  // loop only
  bool decided = false;               // loop only: headers go out once, with the first RCPT

  void set(SpfOutcome value) {
    std::lock_guard lock(mutex);
    if (!outcome) outcome = std::move(value);
  }
  SpfOutcome get() {
    std::lock_guard lock(mutex);
    return *outcome;
  }
  void settle() {
    settled = true;
    auto pending = std::move(waiters);
    for (auto& waiter : pending) waiter();
  }
};

// Stops a check whose DNS answers come too slowly as a whole: after the deadline every further
// query is a timeout, so the result is temperror rather than a wait the client cannot bear.
class DeadlineLookup final : public DnsLookup {
 public:
  DeadlineLookup(std::shared_ptr<const DnsLookup> inner, Duration budget)
      : inner_(std::move(inner)), deadline_(std::chrono::steady_clock::now() + budget) {}
  DnsRecordSet query(std::string_view name, uint16_t type) const override {
    if (std::chrono::steady_clock::now() >= deadline_) {
      DnsRecordSet answer;
      answer.status = DnsStatus::Timeout;
      answer.error = "SPF check took longer than its time budget";
      return answer;
    }
    return inner_->query(name, type);
  }

 private:
  std::shared_ptr<const DnsLookup> inner_;
  std::chrono::steady_clock::time_point deadline_;
};

std::string comment(const SpfOutcome& outcome, const SpfRequest& request, std::string_view receiver) {
  // Domain and sender come from the client: only printable ASCII goes into a header.
  std::string who = outcome.identity == "helo" ? "helo " + printable(outcome.domain, 255)
                                               : "domain of " + printable(outcome.sender, 320);
  switch (outcome.result) {
    case SpfResult::Pass: return std::string(receiver) + ": " + who + " designates " + request.client_ip + " as permitted sender";
    case SpfResult::Fail: return std::string(receiver) + ": " + who + " does not designate " + request.client_ip + " as permitted sender";
    case SpfResult::SoftFail: return std::string(receiver) + ": " + who + " discourages use of " + request.client_ip + " as permitted sender";
    case SpfResult::Neutral: return std::string(receiver) + ": " + request.client_ip + " is neither permitted nor denied by " + who;
    case SpfResult::None: return std::string(receiver) + ": " + who + " does not publish SPF";
    case SpfResult::TempError: return std::string(receiver) + ": temporary error checking " + who + ": " + printable(outcome.reason, 120);
    case SpfResult::PermError: return std::string(receiver) + ": permanent error in SPF of " + who + ": " + printable(outcome.reason, 120);
  }
  return std::string(receiver);
}

std::vector<HeaderField> traceHeaders(const SpfOutcome& outcome, const SpfRequest& request) {
  // RFC 7208 §9.1: result (comment) key=value pairs.
  std::string value = std::string(spfResultName(outcome.result)) + " (" + comment(outcome, request, request.receiver) + ")";
  value += "\r\n\tclient-ip=" + request.client_ip + ";";
  value += " envelope-from=" + quoted(request.sender) + ";";
  value += " helo=" + quoted(request.helo) + ";";
  if (outcome.result == SpfResult::PermError || outcome.result == SpfResult::TempError)
    value += "\r\n\tproblem=" + quoted(printable(outcome.reason, 200)) + ";";
  if (!outcome.mechanism.empty()) value += "\r\n\tmechanism=" + quoted(outcome.mechanism) + ";";
  value += "\r\n\treceiver=" + request.receiver + "; identity=" + outcome.identity;
  return {HeaderField{"Received-SPF", value}};
}

std::string authResult(const SpfOutcome& outcome, const SpfRequest& request) {
  // RFC 8601 §2.7.2: smtp.mailfrom carries the checked address; smtp.helo the HELO identity.
  std::string entry = std::string("spf=") + spfResultName(outcome.result);
  if (outcome.result != SpfResult::Pass) entry += " (" + comment(outcome, request, request.receiver) + ")";
  // Both come from the client as it wrote them: quoted, or left out, per RFC 8601 §2.2.
  if (outcome.identity == "helo") entry += propertySpec("smtp.helo", outcome.domain);
  else entry += propertySpec("smtp.mailfrom", outcome.sender);
  return entry;
}

Reply refusal(const SpfOutcome& outcome, PolicyAction action) {
  bool temporary = action == PolicyAction::TempFail;
  // RFC 7372 §3.2: x.7.23 validation failed, x.7.24 validation error.
  bool error = outcome.result == SpfResult::TempError || outcome.result == SpfResult::PermError;
  std::string enhanced = std::string(temporary ? "4" : "5") + (error ? ".7.24" : ".7.23");
  int code = temporary ? 451 : 550;
  std::string text = error ? (outcome.result == SpfResult::TempError ? "SPF temporary error, try again later"
                                                                      : "SPF permanent error in the sender's SPF record")
                           : "SPF validation failed: " + outcome.domain + " does not authorize this host (" +
                                 std::string(spfResultName(outcome.result)) + ")";
  if (!outcome.explanation.empty()) {
    // The domain's own words (RFC 7208 §6.2), when they fit a reply line.
    if (auto with_explanation = Reply::make(code, enhanced, text + "\n" + printable(outcome.explanation, 400, false)))
      return *with_explanation;
  }
  return Reply::of(code, enhanced, text);
}

// The sender as SPF's macros see it (RFC 7208 §7.3: %{l} is the local-part): a quoted local part
// without its quotes and quoted-pairs ("Macro Error"@x gives Macro Error@x).
std::string spfSender(const std::optional<Path>& sender) {
  if (!sender || sender->null) return {};
  const std::string& local = sender->mailbox.local_part;
  if (local.size() < 2 || local.front() != '"' || local.back() != '"') return sender->address();
  std::string unquoted;
  for (std::size_t i = 1; i + 1 < local.size(); ++i) {
    if (local[i] == '\\' && i + 2 < local.size()) ++i;
    unquoted += local[i];
  }
  return unquoted + "@" + sender->mailbox.domain;
}

}  // namespace

std::unique_ptr<Stage> SpfStage::fromSettings(Settings& settings, StageContext& context) {
  Policy policy;
  for (std::size_t i = 0; i < policy_keys.size(); ++i) readPolicyAction(settings, policy_keys[i], policy.action[i]);
  if (auto networks = settings.strings("trusted_networks")) {
    for (const auto& network : *networks)
      if (!cidrContains(network, network.substr(0, network.find('/'))))
        settings.fail("trusted_networks", "\"" + network + "\" is not a CIDR block such as \"10.0.0.0/8\"");
    policy.trusted_networks = std::move(*networks);
  }
  if (auto timeout = settings.duration("check_timeout")) policy.check_timeout = *timeout;
  std::string error;
  auto dns = context.dns(error);
  if (!dns) {
    settings.fail("type", "the DNS resolver cannot start: " + error);
    return nullptr;
  }
  return std::make_unique<SpfStage>(std::move(dns), std::move(policy));
}

Verdict SpfStage::decide(const SpfOutcome& outcome, const SpfRequest& request, const Policy& policy) {
  PolicyAction action = policy.action[static_cast<std::size_t>(outcome.result)];
  std::string reason = std::string(spfResultName(outcome.result)) + ": " + outcome.reason;
  Verdict verdict;
  switch (action) {
    case PolicyAction::Accept: verdict = Verdict::proceed(reason); break;
    case PolicyAction::Tag: verdict = Verdict::tag({}, 0, reason); break;
    case PolicyAction::TempFail: verdict = Verdict::tempFail(refusal(outcome, action), reason); break;
    case PolicyAction::Reject: verdict = Verdict::reject(refusal(outcome, action), reason); break;
  }
  if (!verdict.ends()) {
    verdict.headers = traceHeaders(outcome, request);
    verdict.auth_results.push_back(authResult(outcome, request));
  }
  verdict.details = {{"identity", outcome.identity},
                     {"domain", outcome.domain},
                     {"result", spfResultName(outcome.result)},
                     {"dns_queries", outcome.dns_queries}};
  if (!outcome.mechanism.empty()) verdict.details.emplace_back("mechanism", outcome.mechanism);
  return verdict;
}

Step SpfStage::check(const StageInput& input) const {
  if (input.phase == Phase::MailFrom) {
    for (const auto& network : policy_.trusted_networks)
      if (cidrContains(network, input.client_ip)) return Verdict::proceed("client in trusted_networks: not checked");
    if (!input.scratch || !input.background) return Verdict::proceed("no transaction");
    auto pending = std::make_shared<PendingCheck>();
    pending->request = SpfRequest{input.client_ip, spfSender(input.sender), input.helo, input.hostname};
    input.scratch->set(this, pending);
    auto dns = std::make_shared<DeadlineLookup>(dns_, policy_.check_timeout);
    // Started now, awaited at RCPT: the DNS lookups overlap the client's next round trip.
    input.background->submit(
        [pending, dns](std::stop_token) {
          pending->set(checkSpf(*dns, pending->request));
          return Verdict::proceed();
        },
        policy_.check_timeout + std::chrono::seconds(5), [pending, facts = input.scratch->shared<AuthFacts>()](std::optional<Verdict> finished) {
          if (!finished) {
            SpfOutcome late;
            late.result = SpfResult::TempError;
            late.identity = pending->request.sender.empty() ? "helo" : "mailfrom";
            late.reason = "the check did not finish in time";
            pending->set(std::move(late));
          }
          SpfOutcome outcome = pending->get();
          facts->setSpf(SpfFact{spfResultName(outcome.result), outcome.domain, outcome.identity == "helo"});
          pending->settle();
        });
    return Verdict::proceed("check started");
  }
  auto pending = input.scratch ? input.scratch->get<PendingCheck>(this) : nullptr;
  if (!pending) return Verdict::proceed("not checked");
  auto verdictFor = [policy = policy_, pending]() {
    Verdict verdict = decide(pending->get(), pending->request, policy);
    // Later recipients share the first one's verdict; the headers are added once.
    if (std::exchange(pending->decided, true) && !verdict.ends()) {
      verdict.headers.clear();
      verdict.auth_results.clear();
      verdict.details.clear();
      verdict.reason = "decided at the first recipient";
    }
    return verdict;
  };
  if (pending->settled) return verdictFor();
  return Deferred{[pending, verdictFor](Deferred::Resume resume) mutable {
    pending->waiters.push_back([verdictFor, resume = std::move(resume)]() mutable { resume(verdictFor()); });
  }};
}

}  // namespace mailgate
