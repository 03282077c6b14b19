#include "filters/dkim/dkim_stage.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>

#include "filters/author_domains.h"
#include "filters/auth_facts.h"
#include "filters/dkim/dkim_identifiers.h"
#include "filters/header_text.h"
#include "gateway/pipeline/pipeline.h"

namespace mailgate {
namespace {

constexpr std::array<const char*, 5> policy_keys{"on_pass", "on_fail", "on_none", "on_temperror", "on_permerror"};
constexpr std::array<const char*, 5> outcome_names{"pass", "fail", "none", "temperror", "permerror"};

// A piece of hashing that has not finished within this long means the pool is stuck: the
// verification is given up (temperror) rather than run concurrently with the piece still going.
constexpr Duration piece_timeout = std::chrono::seconds(60);
// Pieces smaller than this wait for more before a job is started for them (fewer thread hops).
constexpr std::size_t piece_octets = 64 * 1024;

// Most mail is unsigned: a header section that ends within this many octets with no
// "DKIM-Signature" anywhere in it is answered on the loop (dkim=none) without libopendkim or a
// trip to the pool. A longer one, or one that names the field anywhere, is verified as before.
constexpr std::size_t unsigned_scan_octets = 64 * 1024;

// Where the header section ends in `text` (just past its empty line: a line that is "\n" or
// "\r\n", as DkimVerifier reads it), looking at lines that start at or after `from`; npos when not
// yet seen.
std::size_t headerEnd(std::string_view text, std::size_t from) {
  auto emptyLineAt = [&](std::size_t at) -> std::size_t {
    if (at < text.size() && text[at] == '\n') return at + 1;
    if (at + 1 < text.size() && text[at] == '\r' && text[at + 1] == '\n') return at + 2;
    return std::string_view::npos;
  };
  if (from < 2)
    if (std::size_t end = emptyLineAt(0); end != std::string_view::npos) return end;
  // From two octets back: the newline before an empty line may have come in the last piece.
  for (std::size_t newline = text.find('\n', from < 2 ? 0 : from - 2); newline != std::string_view::npos;
       newline = text.find('\n', newline + 1)) {
    if (std::size_t end = emptyLineAt(newline + 1); end != std::string_view::npos) return end;
  }
  return std::string_view::npos;
}

bool namesSignatureField(std::string_view header) {
  constexpr std::string_view name = "dkim-signature";
  auto found = std::search(header.begin(), header.end(), name.begin(), name.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
  return found != header.end();
}

// One message's verification. The verifier is used by one job at a time: `busy` (loop only) says
// a job has it, and the next piece waits in `pending` until that job is back on the loop.
struct DkimTransaction {
  explicit DkimTransaction(std::shared_ptr<const DkimLibrary> library) : verifier(std::move(library)) {}

  // Loop only: the header section while it arrives, until it is known whether any signature can be
  // in it (then `header` is freed).
  enum class Header { Arriving, Unsigned, MaySign };
  Header header_state = Header::Arriving;
  std::string header;
  void scanHeader(std::string_view bytes) {
    std::size_t from = header.size();
    std::size_t room = header.size() < unsigned_scan_octets + 2 ? unsigned_scan_octets + 2 - header.size() : 0;
    header.append(bytes.substr(0, std::min(bytes.size(), room)));
    std::size_t end = headerEnd(header, from);
    if (end != std::string_view::npos && end <= unsigned_scan_octets) {
      header_state = namesSignatureField(std::string_view(header).substr(0, end)) ? Header::MaySign : Header::Unsigned;
    } else if (header.size() > unsigned_scan_octets) {
      header_state = Header::MaySign;
    } else {
      return;
    }
    std::string().swap(header);
  }

  DkimVerifier verifier;             // jobs only, one at a time
  std::string pending;               // loop only: bytes not yet handed to a job
  bool busy = false;                 // loop only
  bool stuck = false;                // loop only: a job timed out and may still hold the verifier
  bool ended = false;                // loop only: the end of data was seen
  std::optional<Deferred::Resume> resume;  // loop only: the pipeline waits for the verdict
  JobRunner* runner = nullptr;
  // Set by the final job, read on the loop after it.
  std::vector<DkimSignatureResult> results;
  std::string error;
  std::vector<std::string> author_domains;  // empty when the From: field is missing, doubled or bad
};

bool sameOrParent(std::string_view signer, std::string_view author) {
  if (signer.empty()) return false;
  if (signer.size() == author.size()) return std::equal(signer.begin(), signer.end(), author.begin(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); });
  if (author.size() <= signer.size() || author[author.size() - signer.size() - 1] != '.') return false;
  return sameOrParent(signer, author.substr(author.size() - signer.size()));
}

// The pool did not run a verification job within its time: the message can be tried again.
Verdict unfinished() {
  return Verdict::tempFail(Reply::of(451, "4.7.20", "DKIM verification did not finish, try again later"),
                           "the verification did not finish in time");
}

void finishVerification(const std::shared_ptr<DkimTransaction>& state);

// Hands what is pending to a job, unless one is already busy; when everything is hashed and the
// end of data was seen, finishes.
void drive(const std::shared_ptr<DkimTransaction>& state) {
  if (state->busy || state->stuck) return;
  if (state->ended) {  // the rest and the verification go in one job: one trip to the pool
    finishVerification(state);
    return;
  }
  if (state->pending.size() < piece_octets) return;
  state->busy = true;
  std::string piece = std::move(state->pending);
  state->pending.clear();
  state->runner->submit(
      [state, piece = std::move(piece)](std::stop_token) {
        state->verifier.feed(piece);
        return Verdict::proceed();
      },
      piece_timeout,
      [state](std::optional<Verdict> finished) {
        state->busy = false;
        if (!finished) state->stuck = true;
        if (state->stuck) {
          if (state->resume) {
            auto resume = std::move(*state->resume);
            state->resume.reset();
            resume(unfinished());
          }
          return;
        }
        drive(state);
      });
}

void finishVerification(const std::shared_ptr<DkimTransaction>& state) {
  if (!state->resume || state->busy) return;
  state->busy = true;
  std::string rest = std::move(state->pending);
  state->pending.clear();
  state->runner->submit(
      [state, rest = std::move(rest)](std::stop_token) {
        state->verifier.feed(rest);
        state->results = state->verifier.finish(state->error);
        state->author_domains = authorDomains(state->verifier.fromFields()).domains;
        return Verdict::proceed();
      },
      piece_timeout,
      [state](std::optional<Verdict> finished) {
        state->busy = false;
        if (!finished) state->stuck = true;
        if (!state->resume) return;
        auto resume = std::move(*state->resume);
        state->resume.reset();
        // The stage's own callback turns a proceed into the real verdict; a stuck pool is a
        // tempfail, as for a piece that did not finish.
        resume(finished ? Verdict::proceed() : unfinished());
      });
}

DkimOutcome overallOutcome(const std::vector<DkimSignatureResult>& signatures, const std::string& error) {
  if (!error.empty()) return DkimOutcome::PermError;
  if (signatures.empty()) return DkimOutcome::None;
  auto any = [&](std::string_view result) {
    return std::any_of(signatures.begin(), signatures.end(), [&](const auto& s) { return s.result == result; });
  };
  if (any("pass")) return DkimOutcome::Pass;
  if (any("temperror")) return DkimOutcome::TempError;  // a retry may find the passing one
  if (any("fail") || any("policy")) return DkimOutcome::Fail;
  return DkimOutcome::PermError;
}

std::string authResult(const DkimSignatureResult& signature) {
  std::string entry = "dkim=" + signature.result;
  if (signature.result != "pass" && !signature.reason.empty()) entry += " reason=" + quoted(printable(signature.reason, 100, false));
  // RFC 8601 §2.7.1: header.d and header.s are d= and s=; one that is not a domain name or a
  // selector (the signature is then a permerror) is left out rather than written for a reader to
  // take for a signer.
  if (isDkimDomain(signature.domain)) entry += " header.d=" + signature.domain;
  if (isDkimSelector(signature.selector)) entry += " header.s=" + signature.selector;
  if (!signature.algorithm.empty()) entry += " header.a=" + signature.algorithm;
  entry += propertySpec("header.b", signature.b);
  return entry;
}

}  // namespace

std::unique_ptr<Stage> DkimStage::fromSettings(Settings& settings, StageContext& context) {
  Policy policy;
  for (std::size_t i = 0; i < policy_keys.size(); ++i) readPolicyAction(settings, policy_keys[i], policy.action[i]);
  if (auto require = settings.boolean("require_author_domain")) policy.require_author_domain = *require;
  DkimLibraryOptions options;
  if (auto max = settings.integer("max_signatures", 1, 64)) options.max_signatures = static_cast<int>(*max);
  // RFC 8301 §3.2: below 1024 bits is never acceptable; an operator may ask for more.
  if (auto bits = settings.integer("min_key_bits", 1024, 8192)) options.min_key_bits = static_cast<unsigned>(*bits);
  std::string error;
  auto dns = context.dns(error);
  if (!dns) {
    settings.fail("type", "the DNS resolver cannot start: " + error);
    return nullptr;
  }
  auto library = DkimLibrary::make(std::move(dns), options);
  if (!library) {
    settings.fail("type", library.error());
    return nullptr;
  }
  return std::make_unique<DkimStage>(std::move(*library), policy);
}

void DkimStage::messageBytes(const StageInput& input, std::string_view bytes) const {
  if (!input.scratch || !input.background) return;
  auto state = input.scratch->get<DkimTransaction>(this);
  if (!state) {
    state = std::make_shared<DkimTransaction>(library_);
    state->runner = input.background;
    input.scratch->set(this, state);
  }
  if (state->ended || state->stuck) return;
  if (state->header_state == DkimTransaction::Header::Arriving) state->scanHeader(bytes);
  if (state->header_state == DkimTransaction::Header::Unsigned) {
    std::string().swap(state->pending);
    return;
  }
  state->pending.append(bytes);
  drive(state);
}

Step DkimStage::check(const StageInput& input) const {
  if (!input.scratch || !input.background) return Verdict::proceed("no transaction");
  auto state = input.scratch->get<DkimTransaction>(this);
  if (!state) {  // nothing arrived through messageBytes (an empty message): verify what there is
    state = std::make_shared<DkimTransaction>(library_);
    state->runner = input.background;
    input.scratch->set(this, state);
  }
  state->ended = true;
  if (state->stuck)
    return unfinished();
  if (state->header_state == DkimTransaction::Header::Unsigned) {
    input.scratch->shared<AuthFacts>()->setDkim({});
    return decide({}, {}, {}, policy_);
  }
  return Deferred{[state, policy = policy_, facts = input.scratch->shared<AuthFacts>()](Deferred::Resume resume) mutable {
    state->resume = [state, policy, facts, resume = std::move(resume)](Verdict early) mutable {
      if (early.ends()) {  // the verification itself failed (stuck pool)
        resume(std::move(early));
        return;
      }
      std::vector<DkimFact> found;
      for (const auto& signature : state->results)
        found.push_back(DkimFact{signature.result, signature.domain, signature.selector});
      facts->setDkim(std::move(found));
      resume(decide(state->results, state->error, state->author_domains, policy));
    };
    drive(state);
  }};
}

Verdict DkimStage::decide(const std::vector<DkimSignatureResult>& given, const std::string& error,
                          const std::vector<std::string>& author_domains, const Policy& policy) {
  std::vector<DkimSignatureResult> signatures = given;
  bool unaligned_pass = false;
  if (policy.require_author_domain) {
    for (auto& signature : signatures) {
      bool aligned = std::any_of(author_domains.begin(), author_domains.end(),
                                 [&](const std::string& author) { return sameOrParent(signature.domain, author); });
      if (signature.result == "pass" && !aligned) {
        signature.result = "policy";
        signature.reason = "signer is not the author's domain";
        unaligned_pass = true;
      }
    }
  }
  DkimOutcome outcome = overallOutcome(signatures, error);
  std::string reason = outcome_names[static_cast<std::size_t>(outcome)];
  if (!error.empty()) reason += ": " + error;
  else if (signatures.empty()) reason += ": no signature";
  else reason += ": " + std::to_string(signatures.size()) + " signature" + (signatures.size() == 1 ? "" : "s");

  Reply refusal;
  bool only_policy = !signatures.empty() && std::all_of(signatures.begin(), signatures.end(), [](const auto& s) {
    return s.result == "policy";
  });
  switch (outcome) {
    case DkimOutcome::TempError:
      refusal = Reply::of(451, "4.7.20", "DKIM key lookup failed, try again later");
      break;
    case DkimOutcome::None: refusal = Reply::of(550, "5.7.20", "No DKIM signature found"); break;
    case DkimOutcome::Fail:
      // RFC 7372 §3.1: 5.7.21 when signatures verified but none was acceptable, 5.7.22 when none
      // was the author's.
      if (unaligned_pass) refusal = Reply::of(550, "5.7.22", "No valid author-matched DKIM signature found");
      else if (only_policy) refusal = Reply::of(550, "5.7.21", "No acceptable DKIM signature found");
      else refusal = Reply::of(550, "5.7.20", "No passing DKIM signature found");
      break;
    default: refusal = Reply::of(550, "5.7.20", "No valid DKIM signature found"); break;
  }
  Verdict verdict = verdictFor(policy.action[static_cast<std::size_t>(outcome)], refusal, reason);
  if (!verdict.ends()) {
    if (signatures.empty()) verdict.auth_results.push_back(error.empty() ? "dkim=none" : "dkim=permerror reason=" + quoted(printable(error, 100, false)));
    for (const auto& signature : signatures) verdict.auth_results.push_back(authResult(signature));
  }
  verdict.details = {{"result", outcome_names[static_cast<std::size_t>(outcome)]}};
  std::vector<Details> listed;
  for (const auto& signature : signatures) {
    Details item = {{"domain", signature.domain}, {"selector", signature.selector}, {"result", signature.result}};
    if (!signature.algorithm.empty()) item.emplace_back("algorithm", signature.algorithm);
    if (signature.key_bits != 0) item.emplace_back("key_bits", signature.key_bits);
    if (!signature.reason.empty()) item.emplace_back("reason", signature.reason);
    listed.push_back(std::move(item));
  }
  verdict.detail_lists.emplace_back("signatures", std::move(listed));
  return verdict;
}

}  // namespace mailgate
