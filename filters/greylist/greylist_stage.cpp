#include "filters/greylist/greylist_stage.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "filters/auth_facts.h"
#include "filters/greylist/redis_store.h"
#include "filters/greylist/sqlite_store.h"
#include "gateway/pipeline/allowance.h"
#include "gateway/pipeline/pipeline.h"

namespace mailgate {
namespace {

// The embedded store's folder when `state_dir` is not set: beside the Maildir default
// (var/maildir), relative to the working directory as that is.
constexpr const char* default_state_dir = "var/state";
constexpr const char* store_file = "greylist.sqlite";
// Longer than any of these makes no sense for greylisting (and keeps the arithmetic small).
constexpr auto max_period = std::chrono::hours(24 * 366);

std::string lowered(std::string text) {
  for (char& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  while (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

bool inDomain(const std::string& domain, const std::string& listed) {
  return domain == listed || (domain.size() > listed.size() && domain.ends_with(listed) &&
                              domain[domain.size() - listed.size() - 1] == '.');
}

std::optional<std::chrono::seconds> period(Settings& settings, std::string_view key, std::chrono::seconds min) {
  auto value = settings.duration(key);
  if (!value) return std::nullopt;
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*value);
  if (seconds < min || seconds > max_period) {
    settings.fail(key, "must be from " + std::to_string(min.count()) + " s to 366 days");
    return std::nullopt;
  }
  return seconds;
}

int64_t secondsNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Verdict passWithoutStore(const std::string& store, const std::string& why) {
  // Greylisting must never lose mail: a store that cannot answer lets the recipient through.
  std::fprintf(stderr, "mailgate: greylist: %s: %s (mail let through)\n", store.c_str(), why.c_str());
  Verdict verdict = Verdict::proceed("store unavailable, let through: " + why);
  verdict.details.emplace_back("store_error", why);
  return verdict;
}

}  // namespace

std::unique_ptr<Stage> GreylistStage::fromSettings(Settings& settings, StageContext& context) {
  Options options;
  GreylistPolicy& policy = options.policy;
  if (auto delay = period(settings, "delay", std::chrono::seconds(1))) policy.delay = *delay;
  if (auto window = period(settings, "retry_window", std::chrono::seconds(1))) policy.retry_window = *window;
  if (auto expire = period(settings, "expire", std::chrono::seconds(1))) policy.expire = *expire;
  if (policy.retry_window <= policy.delay)
    settings.fail("retry_window", "must be longer than `delay` (" + std::to_string(policy.delay.count()) +
                                      " s), or no retry could ever pass");
  if (auto after = settings.integer("auto_allow_after", 0, 1000000)) policy.auto_allow_after = *after;
  if (auto domains = settings.strings("skip_spf_pass_domains"))
    for (const auto& domain : *domains) options.skip_spf_pass_domains.push_back(lowered(domain));
  if (auto timeout = settings.duration("store_timeout")) options.store_timeout = *timeout;
  std::shared_ptr<GreylistStore> store;
  auto url = settings.string("store");
  auto state_dir = settings.string("state_dir");
  if (url && state_dir) settings.fail("state_dir", "only for the embedded store: leave it out with `store`");
  if (url) {
    auto endpoint = RedisStore::endpointOf(*url);
    if (endpoint) store = std::make_shared<RedisStore>(*endpoint);
    else settings.fail("store", endpoint.error());
  } else {
    std::filesystem::path folder = state_dir.value_or(default_state_dir);
    // A relative state_dir written in the file is relative to the file; the default, like the
    // Maildir's, to the working directory.
    if (state_dir && folder.is_relative()) {
      auto base = std::filesystem::path(context.config().source).parent_path();
      if (!base.empty()) folder = base / folder;
    }
    store = std::make_shared<SqliteStore>((folder / store_file).string());
  }
  if (!settings.ok() || !store) return nullptr;
  return std::make_unique<GreylistStage>(std::move(store), std::move(options));
}

Step GreylistStage::check(const StageInput& input) const {
  if (!input.recipient) return Verdict::proceed("no recipient");
  for (const auto* scratch : {input.session_scratch.get(), input.scratch.get()}) {
    if (!scratch) continue;
    if (auto allowance = scratch->find<Allowance>(); allowance && allowance->covers(name()))
      return Verdict::proceed("skipped: " + allowance->by);
  }
  if (!options_.skip_spf_pass_domains.empty() && input.scratch) {
    if (auto facts = input.scratch->find<AuthFacts>()) {
      auto spf = facts->spf();
      if (spf && spf->result == "pass" && !spf->helo) {
        std::string domain = lowered(spf->domain);
        for (const auto& listed : options_.skip_spf_pass_domains)
          if (inDomain(domain, listed)) return Verdict::proceed("skipped: SPF pass for " + domain);
      }
    }
  }
  std::string sender = input.sender && !input.sender->null ? input.sender->address() : std::string();
  GreylistKeys keys = greylistKeys(input.client_ip, sender, input.recipient->address());
  GreylistPolicy policy = options_.policy;
  GreylistStore::Decide decide = [policy](const std::optional<TripletState>& triplet, int64_t client_passes) {
    return decideGreylist(policy, triplet, client_passes, secondsNow());
  };
  auto verdictOf = [keys, store = store_->describe()](std::expected<GreylistDecision, std::string> result) {
    if (!result) return passWithoutStore(store, result.error());
    const GreylistDecision& decision = *result;
    Verdict verdict =
        decision.pass ? Verdict::proceed(decision.why)
                      : Verdict::tempFail(Reply::of(451, "4.7.1", "Greylisted, try again in " +
                                                                      std::to_string(std::max<int64_t>(1, decision.retry_in)) +
                                                                      " seconds"),
                                          decision.why);
    verdict.details = {{"network", keys.network}, {"store", store}};
    return verdict;
  };
  auto store = store_;
  JobRunner* runner = input.background;
  Duration timeout = options_.store_timeout;
  auto stored_input = std::make_shared<StageInput>(input);
  return Deferred{[store, runner, timeout, stored_input, keys, decide, verdictOf](Deferred::Resume resume) mutable {
    // The store's own answer, within store_timeout: past it the recipient passes, never a 451
    // for our own trouble (the stage's `timeout` would give one).
    auto cancel = std::make_shared<std::move_only_function<void()>>();
    Deferred inner{[store, stored_input, keys, decide, verdictOf, cancel](Deferred::Resume give) mutable {
                     auto shared_give = std::make_shared<Deferred::Resume>(std::move(give));
                     *cancel = store->apply(*stored_input, keys, decide,
                                            [shared_give, verdictOf](std::expected<GreylistDecision, std::string> result) {
                                              (*shared_give)(verdictOf(std::move(result)));
                                            });
                   },
                   [cancel] {
                     if (*cancel) (*cancel)();
                   }};
    auto shared_resume = std::make_shared<Deferred::Resume>(std::move(resume));
    runner->await(std::move(inner), timeout, [shared_resume, store](std::optional<Verdict> verdict) {
      (*shared_resume)(verdict ? std::move(*verdict)
                               : passWithoutStore(store->describe(), "no answer within store_timeout"));
    });
  }};
}

}  // namespace mailgate
