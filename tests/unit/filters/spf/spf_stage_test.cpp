// SpfStage::decide: each result under each policy action gives the RFC 7372 reply and the trace
// headers of RFC 7208 §9.1 / RFC 8601.
#include <boost/test/unit_test.hpp>

#include "filters/spf/spf_stage.h"

namespace mailgate {
namespace {

SpfOutcome outcomeOf(SpfResult result) {
  SpfOutcome outcome;
  outcome.result = result;
  outcome.identity = "mailfrom";
  outcome.domain = "example.com";
  outcome.sender = "user@example.com";
  outcome.reason = "test";
  return outcome;
}

const SpfRequest request{"192.0.2.7", "user@example.com", "mail.example.com", "mx.example.org"};

int kindOf(const Verdict& verdict) { return static_cast<int>(verdict.kind); }

}  // namespace

BOOST_AUTO_TEST_SUITE(spf_stage)

BOOST_AUTO_TEST_CASE(default_policy) {
  SpfStage::Policy policy;
  BOOST_TEST(kindOf(SpfStage::decide(outcomeOf(SpfResult::Pass), request, policy)) == kindOf(Verdict::proceed()));
  Verdict fail = SpfStage::decide(outcomeOf(SpfResult::Fail), request, policy);
  BOOST_TEST(fail.reply.summary().starts_with("550 5.7.23"));
  Verdict softfail = SpfStage::decide(outcomeOf(SpfResult::SoftFail), request, policy);
  BOOST_TEST(kindOf(softfail) == static_cast<int>(Verdict::Kind::Tag));
  Verdict temperror = SpfStage::decide(outcomeOf(SpfResult::TempError), request, policy);
  BOOST_TEST(temperror.reply.summary().starts_with("451 4.7.24"));
  Verdict permerror = SpfStage::decide(outcomeOf(SpfResult::PermError), request, policy);
  BOOST_TEST(kindOf(permerror) == static_cast<int>(Verdict::Kind::Tag));
}

BOOST_AUTO_TEST_CASE(reject_and_tempfail_codes_follow_rfc_7372) {
  SpfStage::Policy policy;
  policy.action.fill(PolicyAction::Reject);
  BOOST_TEST(SpfStage::decide(outcomeOf(SpfResult::PermError), request, policy).reply.summary().starts_with("550 5.7.24"));
  BOOST_TEST(SpfStage::decide(outcomeOf(SpfResult::SoftFail), request, policy).reply.summary().starts_with("550 5.7.23"));
  policy.action.fill(PolicyAction::TempFail);
  BOOST_TEST(SpfStage::decide(outcomeOf(SpfResult::Fail), request, policy).reply.summary().starts_with("451 4.7.23"));
  BOOST_TEST(SpfStage::decide(outcomeOf(SpfResult::TempError), request, policy).reply.summary().starts_with("451 4.7.24"));
}

BOOST_AUTO_TEST_CASE(explanation_joins_the_reply_when_it_fits) {
  SpfStage::Policy policy;
  SpfOutcome outcome = outcomeOf(SpfResult::Fail);
  outcome.explanation = "See http://example.com/why.html?s=user@example.com";
  Verdict verdict = SpfStage::decide(outcome, request, policy);
  BOOST_REQUIRE(verdict.reply.lines().size() == 2u);
  BOOST_TEST(verdict.reply.lines()[1] == outcome.explanation);
  outcome.explanation = std::string(300, 'x') + "\x01";
  verdict = SpfStage::decide(outcome, request, policy);
  BOOST_TEST(verdict.reply.wire().find('\x01') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(trace_headers_and_auth_results) {
  SpfStage::Policy policy;
  Verdict pass = SpfStage::decide(outcomeOf(SpfResult::Pass), request, policy);
  BOOST_REQUIRE(pass.headers.size() == 1u);
  BOOST_TEST(pass.headers[0].name == "Received-SPF");
  BOOST_TEST(pass.headers[0].value.starts_with("pass (mx.example.org: domain of user@example.com designates 192.0.2.7"));
  BOOST_TEST(pass.headers[0].value.find("client-ip=192.0.2.7;") != std::string::npos);
  BOOST_TEST(pass.headers[0].value.find("identity=mailfrom") != std::string::npos);
  BOOST_REQUIRE(pass.auth_results.size() == 1u);
  BOOST_TEST(pass.auth_results[0] == "spf=pass smtp.mailfrom=user@example.com");
  SpfOutcome helo = outcomeOf(SpfResult::Neutral);
  helo.identity = "helo";
  helo.domain = "mail.example.com";
  helo.sender = "postmaster@mail.example.com";
  Verdict neutral = SpfStage::decide(helo, SpfRequest{"192.0.2.7", "", "mail.example.com", "mx.example.org"}, policy);
  BOOST_TEST(neutral.auth_results[0].ends_with("smtp.helo=mail.example.com"));
  BOOST_TEST(neutral.headers[0].value.find("envelope-from=\"\";") != std::string::npos);
}

// Issue 12, RFC 8601 §2.2: what the client wrote (MAIL FROM, HELO) is a token, an address, a
// quoted-string or nothing: never a comment or a property of its own.
BOOST_AUTO_TEST_CASE(client_identities_cannot_inject_into_auth_results) {
  SpfStage::Policy policy;
  policy.action.fill(PolicyAction::Tag);
  SpfOutcome quoted_local = outcomeOf(SpfResult::Neutral);
  quoted_local.sender = "\"a; dkim=pass header.d=bank.example\"@example.com";
  BOOST_TEST(SpfStage::decide(quoted_local, request, policy).auth_results[0].ends_with(
      " smtp.mailfrom=\"\\\"a; dkim=pass header.d=bank.example\\\"@example.com\""));
  SpfOutcome helo = outcomeOf(SpfResult::None);
  helo.identity = "helo";
  helo.domain = "x.example;dkim=pass(";
  helo.sender = "postmaster@" + helo.domain;
  std::string entry = SpfStage::decide(helo, request, policy).auth_results[0];
  BOOST_TEST(entry.ends_with(") smtp.helo=\"x.example;dkim=pass(\""), entry);
  // The comment before it keeps its one closing parenthesis: the client's "(" is dropped there.
  BOOST_TEST(entry.find("helo x.example;dkim=pass does not publish SPF)") != std::string::npos, entry);
  SpfOutcome unwritable = outcomeOf(SpfResult::Neutral);
  unwritable.sender = "caf\xc3\xa9@example.com";
  entry = SpfStage::decide(unwritable, request, policy).auth_results[0];
  BOOST_TEST(entry.find("smtp.mailfrom") == std::string::npos, entry);
  // A backslash would quote the comment's closing parenthesis (RFC 5322 §3.2.2).
  SpfOutcome error = outcomeOf(SpfResult::TempError);
  error.reason = "lookup of x\\";
  entry = SpfStage::decide(error, request, policy).auth_results[0];
  BOOST_TEST(entry.find("\\") == std::string::npos, entry);
  BOOST_TEST(entry.find("lookup of x)") != std::string::npos, entry);
}

// RFC 8601 §2.2: a pvalue is a token, a quoted-string or an address. A HELO name is any printable
// text the client chose: written bare, it could end our resinfo and start another ("dkim=pass" of
// its own). Found by tests/fuzz/auth_results_fuzz.
BOOST_AUTO_TEST_CASE(a_helo_name_cannot_add_a_result_to_authentication_results) {
  SpfStage::Policy policy;
  SpfOutcome helo = outcomeOf(SpfResult::Neutral);
  helo.identity = "helo";
  helo.domain = "x;dkim=pass";
  helo.sender = "postmaster@x;dkim=pass";
  Verdict by_helo = SpfStage::decide(helo, SpfRequest{"192.0.2.7", "", "x;dkim=pass", "mx.example.org"}, policy);
  BOOST_REQUIRE(by_helo.auth_results.size() == 1u);
  BOOST_TEST(by_helo.auth_results[0].ends_with(" smtp.helo=\"x;dkim=pass\""), by_helo.auth_results[0]);
}

BOOST_AUTO_TEST_CASE(refusals_carry_no_headers_but_log_details) {
  SpfStage::Policy policy;
  Verdict fail = SpfStage::decide(outcomeOf(SpfResult::Fail), request, policy);
  BOOST_TEST(fail.headers.empty());
  bool has_result = false;
  for (const auto& [key, value] : fail.details) has_result |= key == "result" && value == "fail";
  BOOST_TEST(has_result);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
