#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "filters/auth_facts.h"
#include "filters/dkim/dkim_stage.h"
#include "gateway/pipeline/pipeline.h"
#include "tests/unit/filters/spf/memory_dns.h"

namespace mailgate {
namespace {

DkimSignatureResult signature(std::string result, std::string domain = "example.com", std::string selector = "s1") {
  DkimSignatureResult out;
  out.result = std::move(result);
  out.domain = std::move(domain);
  out.selector = std::move(selector);
  out.algorithm = "rsa-sha256";
  out.b = "AbCdEfGh";
  if (out.result != "pass") out.reason = "why";
  return out;
}

DkimStage::Policy rejecting() {
  DkimStage::Policy policy;
  policy.action.fill(PolicyAction::Reject);
  policy.action[static_cast<std::size_t>(DkimOutcome::Pass)] = PolicyAction::Accept;
  policy.action[static_cast<std::size_t>(DkimOutcome::TempError)] = PolicyAction::TempFail;
  return policy;
}

std::string replyOf(const Verdict& verdict) { return std::to_string(verdict.reply.code()) + " " + verdict.reply.enhanced(); }

std::string detail(const Verdict& verdict, const std::string& key) {
  for (const auto& [name, value] : verdict.details)
    if (name == key) return value.text();
  return "(absent)";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dkim_stage)

// Tagging marks a message as suspicious: a signature that failed or could not be checked is;
// unsigned mail (most mail) and a pass are not, though each still gets its dkim= entry.
BOOST_AUTO_TEST_CASE(by_default_failures_are_tagged_unsigned_mail_accepted_nothing_refused) {
  DkimStage::Policy policy;
  using Kind = Verdict::Kind;
  const std::vector<std::pair<std::vector<DkimSignatureResult>, Kind>> cases = {
      {{}, Kind::Continue}, {{signature("pass")}, Kind::Continue}, {{signature("fail")}, Kind::Tag},
      {{signature("temperror")}, Kind::Tag}, {{signature("permerror")}, Kind::Tag}};
  for (const auto& [results, kind] : cases) {
    Verdict verdict = DkimStage::decide(results, "", {"example.com"}, policy);
    BOOST_TEST_CONTEXT(detail(verdict, "result")) {
      BOOST_TEST(static_cast<int>(verdict.kind) == static_cast<int>(kind));
      BOOST_TEST(verdict.auth_results.size() == 1u);
    }
  }
}

BOOST_AUTO_TEST_CASE(one_passing_signature_is_enough) {
  Verdict verdict = DkimStage::decide({signature("fail", "other.example", "x"), signature("pass")}, "", {}, rejecting());
  BOOST_TEST(static_cast<int>(verdict.kind) == static_cast<int>(Verdict::Kind::Continue));
  BOOST_TEST(detail(verdict, "result") == "pass");
  BOOST_REQUIRE_EQUAL(verdict.auth_results.size(), 2u);
  BOOST_TEST(verdict.auth_results[0] ==
             "dkim=fail reason=\"why\" header.d=other.example header.s=x header.a=rsa-sha256 header.b=AbCdEfGh");
  BOOST_TEST(verdict.auth_results[1] == "dkim=pass header.d=example.com header.s=s1 header.a=rsa-sha256 header.b=AbCdEfGh");
  BOOST_REQUIRE_EQUAL(verdict.detail_lists.size(), 1u);
  BOOST_TEST(verdict.detail_lists[0].first == "signatures");
  BOOST_TEST(verdict.detail_lists[0].second.size() == 2u);
}

BOOST_AUTO_TEST_CASE(refusals_carry_the_rfc7372_codes) {
  BOOST_TEST(replyOf(DkimStage::decide({signature("fail")}, "", {}, rejecting())) == "550 5.7.20");
  BOOST_TEST(replyOf(DkimStage::decide({}, "", {}, rejecting())) == "550 5.7.20");
  BOOST_TEST(replyOf(DkimStage::decide({signature("permerror")}, "", {}, rejecting())) == "550 5.7.20");
  BOOST_TEST(replyOf(DkimStage::decide({signature("policy")}, "", {}, rejecting())) == "550 5.7.21");
  BOOST_TEST(replyOf(DkimStage::decide({signature("policy"), signature("fail")}, "", {}, rejecting())) == "550 5.7.20");
  BOOST_TEST(replyOf(DkimStage::decide({signature("temperror"), signature("fail")}, "", {}, rejecting())) == "451 4.7.20");
  auto author = rejecting();
  author.require_author_domain = true;
  BOOST_TEST(replyOf(DkimStage::decide({signature("pass", "elsewhere.example")}, "", {"example.com"}, author)) == "550 5.7.22");
  BOOST_TEST(!DkimStage::decide({signature("pass", "example.com")}, "", {"mail.example.com"}, author).ends());
  BOOST_TEST(DkimStage::decide({signature("pass", "ample.com")}, "", {"example.com"}, author).ends());
}

BOOST_AUTO_TEST_CASE(the_refusal_class_follows_the_action) {
  DkimStage::Policy policy;
  policy.action[static_cast<std::size_t>(DkimOutcome::Fail)] = PolicyAction::TempFail;
  policy.action[static_cast<std::size_t>(DkimOutcome::TempError)] = PolicyAction::Reject;
  BOOST_TEST(replyOf(DkimStage::decide({signature("fail")}, "", {}, policy)) == "451 4.7.20");
  BOOST_TEST(replyOf(DkimStage::decide({signature("temperror")}, "", {}, policy)) == "550 5.7.20");
}

BOOST_AUTO_TEST_CASE(an_unsigned_message_says_none) {
  Verdict verdict = DkimStage::decide({}, "", {}, DkimStage::Policy{});
  BOOST_REQUIRE_EQUAL(verdict.auth_results.size(), 1u);
  BOOST_TEST(verdict.auth_results[0] == "dkim=none");
  BOOST_TEST(detail(verdict, "result") == "none");
}

BOOST_AUTO_TEST_CASE(header_values_from_outside_are_quoted_or_left_out) {
  // RFC 8601 §2.2: what is not a token is a quoted-string; a d= or s= outside RFC 6376's grammar
  // (the verifier made the signature a permerror) is not written at all: no reader can take
  // "header.d=exa" or a comment from it.
  auto odd = signature("permerror", "exa mple.com", "s;1");
  odd.reason = "bad \"thing\"\r\n";
  odd.b = "Ab/+Cd=";
  Verdict verdict = DkimStage::decide({odd}, "", {}, DkimStage::Policy{});
  BOOST_TEST(verdict.auth_results[0] == "dkim=permerror reason=\"bad \\\"thing\\\"\" header.a=rsa-sha256 header.b=\"Ab/+Cd=\"");
  auto injected = signature("permerror", "legitimate.com(.attacker.com", "sel(x");
  injected.b = "AbCd\r\n\tdkim=pass";
  verdict = DkimStage::decide({injected}, "", {}, DkimStage::Policy{});
  BOOST_TEST(verdict.auth_results[0] == "dkim=permerror reason=\"why\" header.a=rsa-sha256");
  verdict = DkimStage::decide({signature("pass", "Mail.Example.COM", "sel-1.b")}, "", {}, DkimStage::Policy{});
  BOOST_TEST(verdict.auth_results[0] == "dkim=pass header.d=Mail.Example.COM header.s=sel-1.b header.a=rsa-sha256 header.b=AbCdEfGh");
}

BOOST_AUTO_TEST_CASE(the_stage_reads_the_message_while_it_arrives) {
  // The whole path through the pipeline: pieces handed over as they arrive, the verdict at the
  // end of data (inline runner: the jobs run at once).
  std::ifstream file(MAILGATE_TEST_DATA "/data/dkim/rfc8463-A3.eml", std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  std::string message;
  for (char c : text.str()) {
    if (c == '\n') message += '\r';
    message += c;
  }
  auto dns = std::make_shared<test::MemoryDns>();
  dns->addTxt("brisbane._domainkey.football.example.com", {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="});
  auto library = DkimLibrary::make(dns, {});
  BOOST_REQUIRE(library.has_value());
  std::vector<PipelineStage> stages;
  stages.push_back(PipelineStage{std::make_unique<DkimStage>(*library, DkimStage::Policy{}), StageMode::Enforce,
                                 std::chrono::seconds(5)});
  auto pipeline = Pipeline::make(std::move(stages));
  BOOST_TEST(pipeline->readsMessageWhileArriving());
  InlineJobRunner runner;
  StageInput input;
  input.phase = Phase::EndOfData;
  input.scratch = std::make_shared<Scratch>();
  input.background = &runner;
  for (std::size_t at = 0; at < message.size(); at += 100) pipeline->messageBytes(input, std::string_view(message).substr(at, 100));
  std::optional<PhaseResult> result;
  pipeline->run(input, runner, [&](PhaseResult done) { result = std::move(done); });
  BOOST_REQUIRE(result.has_value());
  BOOST_REQUIRE_EQUAL(result->auth_results.size(), 2u);
  BOOST_TEST(result->auth_results[0].starts_with("dkim=pass header.d=football.example.com header.s=brisbane header.a=ed25519-sha256"));
  BOOST_TEST(result->auth_results[1].starts_with("dkim=permerror reason=\"no key for this signature\" header.d=football.example.com header.s=test"));
  auto facts = input.scratch->shared<AuthFacts>()->dkim();
  BOOST_REQUIRE_EQUAL(facts.size(), 2u);
  BOOST_TEST(facts[0].result == "pass");
  BOOST_TEST(facts[0].selector == "brisbane");
}

// A pool that never gets to a job within its time (what the thread pool reports on a timeout).
class TimingOutRunner final : public JobRunner {
 public:
  void submit(Job, Duration, Done done) override { done(std::nullopt); }
  void await(Deferred deferred, Duration, Done done) override {
    deferred.subscribe([done = std::move(done)](Verdict verdict) mutable { done(std::move(verdict)); });
  }
};

BOOST_AUTO_TEST_CASE(a_verification_that_does_not_finish_is_a_tempfail) {
  auto library = DkimLibrary::make(std::make_shared<test::MemoryDns>(), {});
  BOOST_REQUIRE(library.has_value());
  DkimStage stage(*library, DkimStage::Policy{});
  TimingOutRunner runner;
  StageInput input;
  input.phase = Phase::EndOfData;
  input.scratch = std::make_shared<Scratch>();
  input.background = &runner;
  stage.messageBytes(input, "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=; b=\r\n"
                            "From: a@example.com\r\n\r\nbody\r\n");
  Step step = stage.check(input);
  BOOST_REQUIRE(std::holds_alternative<Deferred>(step));
  std::optional<Verdict> verdict;
  std::get<Deferred>(step).subscribe([&](Verdict given) { verdict = std::move(given); });
  BOOST_REQUIRE(verdict.has_value());
  BOOST_TEST(verdict->reply.summary() == "451 4.7.20 DKIM verification did not finish, try again later");
}

// Counts what reaches the pool (and runs it at once).
class CountingRunner final : public JobRunner {
 public:
  void submit(Job job, Duration, Done done) override {
    ++submitted;
    done(job(std::stop_token()));
  }
  void await(Deferred deferred, Duration, Done done) override {
    deferred.subscribe([done = std::move(done)](Verdict verdict) mutable { done(std::move(verdict)); });
  }
  int submitted = 0;
};

// Unsigned mail, whatever pieces it comes in, is answered at once: dkim=none, no job, and the
// facts dmarc reads say no signature. A header that names DKIM-Signature anywhere, or that has
// not ended within the bound, goes to the verifier.
BOOST_AUTO_TEST_CASE(unsigned_mail_is_answered_without_a_job) {
  auto library = DkimLibrary::make(std::make_shared<test::MemoryDns>(), {});
  BOOST_REQUIRE(library.has_value());
  DkimStage stage(*library, DkimStage::Policy{});
  const std::string unsigned_message = "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
  struct Case {
    std::string message;
    std::size_t piece;
    bool verified;  // went to the verifier (one job or more)
  };
  std::vector<Case> cases{
      {unsigned_message, 1000, false},
      {unsigned_message, 1, false},                            // the empty line split over pieces
      {"\r\nDKIM-Signature: in the body\r\n", 1, false},      // no header section at all
      {"From: a@example.com\n\nbody\n", 3, false},             // bare LF lines
      {"X-Note: about dkim-signature\r\n\r\nbody\r\n", 1000, true},  // named: verified
      {"From: a@example.com\r\n" + std::string(70 * 1024, 'x') + "\r\n\r\nbody\r\n", 4096, true},  // too long
  };
  for (const Case& test : cases) {
    CountingRunner runner;
    StageInput input;
    input.phase = Phase::EndOfData;
    input.scratch = std::make_shared<Scratch>();
    input.background = &runner;
    for (std::size_t at = 0; at < test.message.size(); at += test.piece)
      stage.messageBytes(input, std::string_view(test.message).substr(at, test.piece));
    Step step = stage.check(input);
    std::optional<Verdict> verdict;
    if (auto* given = std::get_if<Verdict>(&step)) verdict = std::move(*given);
    else std::get<Deferred>(step).subscribe([&](Verdict given) { verdict = std::move(given); });
    BOOST_REQUIRE(verdict.has_value());
    BOOST_TEST((runner.submitted > 0) == test.verified, test.message.substr(0, 40));
    BOOST_TEST(verdict->reason == "none: no signature", test.message.substr(0, 40));
    BOOST_TEST(verdict->auth_results.size() == 1u);
    BOOST_TEST(verdict->auth_results.front() == "dkim=none");
    BOOST_TEST(input.scratch->shared<AuthFacts>()->dkim().empty());
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
