#include "filters/dnsbl/dnsbl_stage.h"

#include <algorithm>
#include <mutex>
#include <utility>

#include "filters/dmarc/dmarc_check.h"
#include "filters/dnsbl/uri_domains.h"
#include "filters/header_text.h"

namespace mailgate {
namespace {

constexpr const char* default_public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";
// A message is read this far for its links: where a rule engine stops reading too
// (rules' max_scan_bytes default), and far past where senders put the links they want seen.
constexpr uint64_t max_uri_scan_bytes = 1024 * 1024;
// Bounds for operators' values: a list per entry, so a few dozen at most in practice.
constexpr int max_threshold = 10000;
constexpr int64_t max_uri_domains_limit = 1000;

// The lookups that belong to the session (the client, its HELO name) ...
struct SessionLookups {
  std::shared_ptr<LookupBatch> client;
  std::shared_ptr<LookupBatch> helo;
};
// ... and to one transaction (the sender's domain, the message's links).
struct TransactionLookups {
  std::shared_ptr<LookupBatch> sender;
  std::shared_ptr<LookupBatch> uris;
  std::shared_ptr<bool> decided = std::make_shared<bool>(false);  // the first RCPT's outcome was logged
};

template <class T>
std::shared_ptr<T> slot(Scratch& scratch, const Stage* stage) {
  auto found = scratch.get<T>(stage);
  if (found) return found;
  auto made = std::make_shared<T>();
  scratch.set(stage, made);
  return made;
}

std::string lowered(std::string text) {
  for (char& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  while (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

// "client [192.0.2.1]", "helo name host.example", ...: what the refusal says was listed.
std::string listedWhat(const ZoneAnswer& answer) {
  switch (answer.thing) {
    case ListedThing::Client: return "client [" + answer.item + "]";
    case ListedThing::Helo: return "helo name " + answer.item;
    case ListedThing::Sender: return "sender domain " + answer.item;
    case ListedThing::Uri: return "URI domain " + answer.item;
  }
  return answer.item;
}

void readZones(Settings& settings, std::string_view key, std::vector<DnsblZone>& zones) {
  auto entries = settings.strings(key);
  if (!entries) return;
  for (const auto& entry : *entries) {
    auto zone = DnsblZone::parse(entry);
    if (zone) zones.push_back(std::move(*zone));
    else settings.fail(key, zone.error());
  }
}

}  // namespace

std::unique_ptr<Stage> DnsblStage::fromSettings(Settings& settings, StageContext& context) {
  Policy policy;
  readZones(settings, "zones", policy.zones);
  readZones(settings, "rhs_zones", policy.rhs_zones);
  readZones(settings, "uri_zones", policy.uri_zones);
  if (policy.zones.empty() && policy.rhs_zones.empty() && policy.uri_zones.empty() && settings.ok())
    settings.fail("zones", "the dnsbl stage needs `zones`, `rhs_zones` or `uri_zones`");
  // Below 1, a client on no list at all would be refused.
  if (auto threshold = settings.integer("threshold", 1, max_threshold)) policy.threshold = static_cast<int>(*threshold);
  if (auto decide = settings.string("decide")) {
    if (*decide == "connect") policy.decide_at_connect = true;
    else if (*decide != "rcpt") settings.fail("decide", "must be \"rcpt\" (default) or \"connect\"");
  }
  if (policy.decide_at_connect && policy.zones.empty())
    settings.fail("decide", "\"connect\" decides on the client's address: it needs `zones`");
  if (auto limit = settings.integer("max_uri_domains", 1, max_uri_domains_limit))
    policy.max_uri_domains = static_cast<std::size_t>(*limit);
  if (auto timeout = settings.duration("lookup_timeout")) policy.lookup_timeout = *timeout;
  std::string list = settings.string("public_suffix_list").value_or(default_public_suffix_list);
  if (!policy.uri_zones.empty()) {
    if (auto loaded = initialiseDmarcLibrary(list); !loaded) settings.fail("public_suffix_list", loaded.error());
  }
  std::string error;
  auto dns = context.dns(error);
  if (!dns) {
    settings.fail("type", "the DNS resolver cannot start: " + error);
    return nullptr;
  }
  if (!settings.ok()) return nullptr;
  return std::make_unique<DnsblStage>(std::move(dns), std::move(policy));
}

DnsblStage::DnsblStage(std::shared_ptr<const DnsLookup> dns, Policy policy)
    : dns_(std::move(dns)), policy_(std::move(policy)) {
  if (!policy_.zones.empty()) phases_ |= phaseBit(Phase::Connect);
  if (!policy_.rhs_zones.empty()) phases_ |= phaseBit(Phase::Helo) | phaseBit(Phase::MailFrom);
  if ((!policy_.zones.empty() && !policy_.decide_at_connect) || !policy_.rhs_zones.empty())
    phases_ |= phaseBit(Phase::Rcpt);
  if (!policy_.uri_zones.empty()) phases_ |= phaseBit(Phase::EndOfData);
}

Verdict DnsblStage::decide(const std::vector<ZoneAnswer>& answers, int threshold) {
  int score = 0;
  const ZoneAnswer* top = nullptr;
  std::vector<Details> zones;
  std::vector<std::string> uri_zones_counted;  // a URI list counts once per message
  for (const auto& answer : answers) {
    Details entry{{"zone", answer.zone},
                  {"for", listedThingName(answer.thing)},
                  {"item", answer.item},
                  {"result", zoneResultName(answer.result)},
                  {"weight", answer.weight}};
    std::string addresses;
    for (const auto& address : answer.addresses) addresses += (addresses.empty() ? "" : ",") + address;
    if (!addresses.empty()) entry.emplace_back("answer", addresses);
    if (!answer.text.empty()) entry.emplace_back("text", answer.text);
    if (!answer.problem.empty()) entry.emplace_back("problem", answer.problem);
    zones.push_back(std::move(entry));
    if (!answer.listed()) continue;
    if (answer.thing == ListedThing::Uri) {
      if (std::find(uri_zones_counted.begin(), uri_zones_counted.end(), answer.zone) != uri_zones_counted.end()) continue;
      uri_zones_counted.push_back(answer.zone);
    }
    score += answer.weight;
    if (answer.weight > 0 && (!top || answer.weight > top->weight)) top = &answer;
  }
  std::string reason = "score " + std::to_string(score) + " (threshold " + std::to_string(threshold) + ")";
  Verdict verdict;
  if (score >= threshold && top) {
    std::string text = "Service unavailable; " + listedWhat(*top) + " blocked using " + top->zone;
    // Postfix's reject_rbl_client form: the list's own words (its TXT record) after a "; ".
    std::expected<Reply, std::string> with_text = std::unexpected(std::string("no text"));
    if (!top->text.empty()) with_text = Reply::make(554, "5.7.1", text + "; " + top->text);
    Reply reply = with_text ? *with_text : Reply::of(554, "5.7.1", printable(text, 400, false));
    verdict = Verdict::reject(std::move(reply), reason + ": " + listedWhat(*top) + " listed by " + top->zone);
  } else {
    verdict = Verdict::proceed(reason);
  }
  verdict.score = score;
  verdict.scored = true;
  verdict.details = {{"threshold", threshold}};
  verdict.detail_lists.emplace_back("zones", std::move(zones));
  return verdict;
}

std::shared_ptr<LookupBatch> DnsblStage::lookUp(const StageInput& input, const std::vector<DnsblZone>& zones,
                                                ListedThing thing, const std::string& item,
                                                const std::string& prefix) const {
  if (zones.empty() || prefix.empty() || !input.background) return nullptr;
  std::vector<ZoneQuestion> questions;
  for (const auto& zone : zones) questions.push_back(ZoneQuestion{zone, thing, item, prefix});
  return LookupBatch::start(*input.background, dns_, std::move(questions), policy_.lookup_timeout);
}

Step DnsblStage::decideWhenSettled(std::vector<std::shared_ptr<LookupBatch>> batches, std::shared_ptr<bool> decided) const {
  auto verdictOf = [batches, decided, threshold = policy_.threshold]() {
    std::vector<ZoneAnswer> answers;
    for (const auto& batch : batches) {
      if (!batch) continue;
      auto some = batch->answers();
      answers.insert(answers.end(), some.begin(), some.end());
    }
    Verdict verdict = decide(answers, threshold);
    // Later recipients get the first one's verdict; its answers are in the record once.
    if (decided && std::exchange(*decided, true)) {
      verdict.details.clear();
      verdict.detail_lists.clear();
      verdict.reason = "as at the first recipient: " + verdict.reason;
    }
    return verdict;
  };
  bool settled = true;
  for (const auto& batch : batches) settled = settled && (!batch || batch->settled());
  if (settled) return verdictOf();
  return Deferred{[batches, verdictOf](Deferred::Resume resume) mutable {
    auto shared_resume = std::make_shared<Deferred::Resume>(std::move(resume));
    whenAllSettled(batches, [shared_resume, verdictOf]() mutable { (*shared_resume)(verdictOf()); });
  }};
}

Step DnsblStage::startUriLookups(const StageInput& input) const {
  if (!input.message || !input.background || !input.scratch) return Verdict::proceed("no message");
  auto transaction = slot<TransactionLookups>(*input.scratch, this);
  auto session = input.session_scratch ? input.session_scratch->get<SessionLookups>(this) : nullptr;
  auto uris = LookupBatch::pending();
  transaction->uris = uris;
  // The message is parsed on the thread pool (MIME decoding is CPU work); its domains then go
  // out as one question each per zone, all at once.
  struct Parsed {
    std::mutex mutex;
    std::vector<std::string> domains;
  };
  auto parsed = std::make_shared<Parsed>();
  JobRunner* runner = input.background;
  input.background->submit(
      [parsed, message = input.message, limit = policy_.max_uri_domains](std::stop_token) {
        auto text = message->readPrefix(max_uri_scan_bytes);
        if (!text) return Verdict::proceed();
        auto domains = uriDomains(*text, limit);
        std::lock_guard lock(parsed->mutex);
        parsed->domains = std::move(domains);
        return Verdict::proceed();
      },
      policy_.lookup_timeout,
      [parsed, uris, runner, dns = dns_, zones = policy_.uri_zones, timeout = policy_.lookup_timeout](std::optional<Verdict>) {
        std::vector<std::string> domains;
        {
          std::lock_guard lock(parsed->mutex);
          domains = parsed->domains;
        }
        std::vector<ZoneQuestion> questions;
        for (const auto& domain : domains)
          for (const auto& zone : zones) questions.push_back(ZoneQuestion{zone, ListedThing::Uri, domain, domain});
        uris->begin(*runner, dns, std::move(questions), timeout);
      });
  std::vector<std::shared_ptr<LookupBatch>> batches{transaction->sender, uris};
  if (session) batches.insert(batches.begin(), {session->client, session->helo});
  return decideWhenSettled(std::move(batches), nullptr);
}

Step DnsblStage::check(const StageInput& input) const {
  if (!input.session_scratch) return Verdict::proceed("no session");
  auto session = slot<SessionLookups>(*input.session_scratch, this);
  switch (input.phase) {
    case Phase::Connect:
      session->client = lookUp(input, policy_.zones, ListedThing::Client, input.client_ip, clientPrefix(input.client_ip));
      if (policy_.decide_at_connect) return decideWhenSettled({session->client}, nullptr);
      return Verdict::proceed("lookups started");
    case Phase::Helo: {
      // A second HELO replaces the first (RFC 5321 §4.1.4).
      std::string name = lowered(input.helo);
      session->helo = isDomainName(name) ? lookUp(input, policy_.rhs_zones, ListedThing::Helo, name, name) : nullptr;
      return Verdict::proceed(session->helo ? "lookups started" : "HELO name is not a domain name: not looked up");
    }
    case Phase::MailFrom: {
      if (!input.scratch) return Verdict::proceed("no transaction");
      auto transaction = slot<TransactionLookups>(*input.scratch, this);
      std::string domain = input.sender && !input.sender->null ? lowered(input.sender->mailbox.domain) : std::string();
      transaction->sender = isDomainName(domain) ? lookUp(input, policy_.rhs_zones, ListedThing::Sender, domain, domain) : nullptr;
      return Verdict::proceed(transaction->sender ? "lookups started" : "no sender domain to look up");
    }
    case Phase::Rcpt: {
      if (!input.scratch) return Verdict::proceed("no transaction");
      auto transaction = slot<TransactionLookups>(*input.scratch, this);
      // A session that began under another configuration (SIGHUP) has not asked these lists yet.
      if (!session->client && !policy_.decide_at_connect)
        session->client = lookUp(input, policy_.zones, ListedThing::Client, input.client_ip, clientPrefix(input.client_ip));
      std::vector<std::shared_ptr<LookupBatch>> batches{session->client, session->helo, transaction->sender};
      return decideWhenSettled(std::move(batches), transaction->decided);
    }
    case Phase::EndOfData: return startUriLookups(input);
  }
  return Verdict::proceed();
}

}  // namespace mailgate
