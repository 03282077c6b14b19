#include "filters/dmarc/dmarc_stage.h"

#include <random>

#include "filters/auth_facts.h"
#include "filters/header_text.h"
#include "gateway/smtp/replies.h"

namespace mailgate {
namespace {

constexpr const char* default_public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";
int samplePercent() {
  thread_local std::mt19937 generator{std::random_device{}()};
  return std::uniform_int_distribution<int>(0, 99)(generator);
}

int severity(const DmarcEvaluation& evaluation) {
  if (evaluation.result != "fail") return 0;
  if (evaluation.disposition == "reject") return 3;
  if (evaluation.disposition == "quarantine") return 2;
  return 1;
}

std::string authResult(const DmarcEvaluation& evaluation) {
  std::string entry = "dmarc=" + evaluation.result;
  if (!evaluation.policy.empty()) {
    entry += " (p=" + evaluation.p;
    if (!evaluation.sp.empty()) entry += " sp=" + evaluation.sp;
    if (evaluation.pct != 100) entry += " pct=" + std::to_string(evaluation.pct);
    entry += " dis=" + evaluation.disposition + ")";
  } else if (!evaluation.reason.empty()) {
    entry += " reason=" + quoted(printable(evaluation.reason, 120));
  }
  entry += propertySpec("header.from", evaluation.author_domain);
  return entry;
}

}  // namespace

std::unique_ptr<Stage> DmarcStage::fromSettings(Settings& settings, StageContext& context) {
  Policy policy;
  readPolicyAction(settings, "on_pass", policy.on_pass);
  readPolicyAction(settings, "on_none", policy.on_none);
  readPolicyAction(settings, "on_policy_none", policy.on_policy_none);
  readPolicyAction(settings, "on_policy_quarantine", policy.on_policy_quarantine);
  readPolicyAction(settings, "on_policy_reject", policy.on_policy_reject);
  readPolicyAction(settings, "on_temperror", policy.on_temperror);
  readPolicyAction(settings, "on_permerror", policy.on_permerror);
  readPolicyAction(settings, "on_invalid_from", policy.on_invalid_from);
  if (auto apply = settings.boolean("apply_pct")) policy.apply_pct = *apply;
  std::string list = settings.string("public_suffix_list").value_or(default_public_suffix_list);
  if (auto loaded = initialiseDmarcLibrary(list); !loaded) {
    settings.fail("public_suffix_list", loaded.error());
    return nullptr;
  }
  std::string error;
  auto dns = context.dns(error);
  if (!dns) {
    settings.fail("type", "the DNS resolver cannot start: " + error);
    return nullptr;
  }
  return std::make_unique<DmarcStage>(std::move(dns), policy);
}

Step DmarcStage::check(const StageInput& input) const {
  if (!input.message || !input.scratch) return Verdict::proceed("no message");
  return Job([dns = dns_, policy = policy_, message = input.message, facts = input.scratch->shared<AuthFacts>(),
              client_ip = input.client_ip](std::stop_token) {
    auto header = message->readPrefix(max_header_scan_octets, true);
    if (!header) return Verdict::tempFail(replies::cannotReadMessage(), "reading the message: " + header.error());
    AuthorDomains authors = authorDomains(*header);
    std::vector<DmarcEvaluation> evaluations;
    auto spf = facts->spf();
    auto dkim = facts->dkim();
    for (const auto& domain : authors.domains)
      evaluations.push_back(evaluateDmarc(*dns, domain, client_ip, spf, dkim, policy.apply_pct ? samplePercent() : -1));
    return decide(authors, evaluations, policy);
  });
}

Verdict DmarcStage::decide(const AuthorDomains& authors, const std::vector<DmarcEvaluation>& evaluations,
                           const Policy& policy) {
  if (authors.problem != AuthorDomains::Problem::None) {
    std::string why = authorProblemText(authors.problem);
    Reply refusal = policy.on_invalid_from == PolicyAction::TempFail
                        ? Reply::of(451, "4.7.1", "Message must have exactly one From: field with an address, try again later")
                        : Reply::of(550, "5.7.1", "Message must have exactly one From: field with an address (RFC 5322 3.6)");
    Verdict verdict = verdictFor(policy.on_invalid_from, refusal, "permerror: " + why);
    if (!verdict.ends()) verdict.auth_results.push_back("dmarc=permerror reason=" + quoted(why));
    verdict.details = {{"result", "permerror"}, {"reason", why}};
    return verdict;
  }
  // §6.6.1: several author domains are each checked; the strictest failing policy applies.
  const DmarcEvaluation* chosen = &evaluations.front();
  auto rank = [](const DmarcEvaluation& e) {
    if (e.result == "fail") return 10 + severity(e);
    if (e.result == "temperror") return 4;
    if (e.result == "permerror") return 3;
    if (e.result == "none") return 2;
    return 1;  // pass
  };
  for (const auto& evaluation : evaluations)
    if (rank(evaluation) > rank(*chosen)) chosen = &evaluation;
  const DmarcEvaluation& decisive = *chosen;

  PolicyAction action = policy.on_pass;
  Reply refusal = Reply::of(550, "5.7.26", "Unauthenticated email from " + printable(decisive.author_domain, 200) +
                                               " is not accepted due to domain's DMARC policy");
  if (decisive.result == "fail") {
    action = decisive.disposition == "reject"       ? policy.on_policy_reject
             : decisive.disposition == "quarantine" ? policy.on_policy_quarantine
                                                    : policy.on_policy_none;
    if (action == PolicyAction::TempFail)
      refusal = Reply::of(451, "4.7.26", "Unauthenticated email from " + printable(decisive.author_domain, 200) +
                                             " is deferred due to domain's DMARC policy");
  } else if (decisive.result == "none") {
    action = policy.on_none;
  } else if (decisive.result == "temperror") {
    action = policy.on_temperror;
    refusal = Reply::of(451, "4.7.26", "DMARC policy lookup failed, try again later");
  } else if (decisive.result == "permerror") {
    action = policy.on_permerror;
  }
  std::string reason = decisive.result + ": " + decisive.author_domain + ": " + decisive.reason;
  if (decisive.result == "fail") reason += "; policy " + decisive.policy + ", disposition " + decisive.disposition;
  Verdict verdict = verdictFor(action, refusal, reason);
  if (!verdict.ends())
    for (const auto& evaluation : evaluations) verdict.auth_results.push_back(authResult(evaluation));
  verdict.details = {{"result", decisive.result}, {"from_domain", decisive.author_domain}};
  if (!decisive.policy.empty()) {
    verdict.details.emplace_back("policy", decisive.policy);
    verdict.details.emplace_back("disposition", decisive.disposition);
    verdict.details.emplace_back("record_domain", decisive.record_domain);
    verdict.details.emplace_back("spf_aligned", decisive.spf_aligned);
    verdict.details.emplace_back("dkim_aligned", decisive.dkim_aligned);
  }
  if (evaluations.size() > 1) {
    std::vector<Details> domains;
    for (const auto& evaluation : evaluations)
      domains.push_back({{"from_domain", evaluation.author_domain}, {"result", evaluation.result},
                         {"policy", evaluation.policy}, {"disposition", evaluation.disposition}});
    verdict.detail_lists.emplace_back("from_domains", std::move(domains));
  }
  return verdict;
}

}  // namespace mailgate
