// The clamav stage's verdicts for each of clamd's answers and each policy (the streaming itself is
// tested against a real clamd in tests/integration/test_clamav.py).
#include "filters/clamav/clamav_stage.h"

#include <boost/test/unit_test.hpp>

#include <string>

using namespace mailgate;

namespace {

std::string headerValue(const Verdict& verdict, std::string_view name) {
  for (const auto& header : verdict.headers)
    if (header.name == name) return header.removesOnly() ? "(removed)" : header.value;
  return "(absent)";
}

std::string detail(const Verdict& verdict, std::string_view key) {
  for (const auto& [name, value] : verdict.details)
    if (name == key) return value.text();
  return "(absent)";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(clamav_stage)

BOOST_AUTO_TEST_CASE(clean_mail_is_marked_scanned_and_forged_status_removed) {
  Verdict verdict = ClamavStage::clean(1234);
  BOOST_TEST((verdict.kind == Verdict::Kind::Continue));
  BOOST_TEST(headerValue(verdict, "X-Virus-Scanned") == "clamav");
  BOOST_TEST(headerValue(verdict, "X-Virus-Status") == "(removed)");
  for (const auto& header : verdict.headers) BOOST_TEST(header.replaces);
  BOOST_TEST(detail(verdict, "scanned_bytes") == "1234");
  BOOST_TEST(detail(verdict, "result") == "clean");
}

BOOST_AUTO_TEST_CASE(a_virus_is_refused_tempfailed_or_tagged) {
  ClamavStage::Policy policy;
  Verdict reject = ClamavStage::virus(policy, "Eicar-Test", 10);
  BOOST_TEST((reject.kind == Verdict::Kind::Reject));
  BOOST_TEST(reject.reply.summary() == "554 5.7.0 Message refused: virus found (Eicar-Test)");
  BOOST_TEST(detail(reject, "signature") == "Eicar-Test");
  BOOST_TEST(headerValue(reject, "X-Virus-Status") == "(removed)");

  policy.on_virus = PolicyAction::TempFail;
  Verdict later = ClamavStage::virus(policy, "Eicar-Test", 10);
  BOOST_TEST((later.kind == Verdict::Kind::TempFail));
  BOOST_TEST(later.reply.code() == 451);

  policy.on_virus = PolicyAction::Tag;
  Verdict tagged = ClamavStage::virus(policy, "Eicar-Test", 10);
  BOOST_TEST((tagged.kind == Verdict::Kind::Tag));
  BOOST_TEST(headerValue(tagged, "X-Virus-Status") == "Infected (Eicar-Test)");
  BOOST_TEST(headerValue(tagged, "X-Virus-Scanned") == "clamav");
}

BOOST_AUTO_TEST_CASE(clamd_trouble_follows_on_error) {
  ClamavStage::Policy policy;
  Verdict tempfail = ClamavStage::trouble(policy, "connecting to clamd: refused", 0);
  BOOST_TEST((tempfail.kind == Verdict::Kind::TempFail));
  BOOST_TEST(tempfail.reply.summary() == "451 4.7.0 Virus scanner unavailable, try again later");
  BOOST_TEST(tempfail.reason == "not scanned: connecting to clamd: refused");
  BOOST_TEST(detail(tempfail, "result") == "error");

  policy.on_error = PolicyAction::Accept;
  Verdict accepted = ClamavStage::trouble(policy, "timeout", 0);
  BOOST_TEST((accepted.kind == Verdict::Kind::Continue));
  // Not scanned: nothing says it was, and nothing from outside says so either.
  BOOST_TEST(headerValue(accepted, "X-Virus-Scanned") == "(removed)");
  BOOST_TEST(headerValue(accepted, "X-Virus-Status") == "(removed)");

  policy.on_error = PolicyAction::Tag;
  BOOST_TEST(headerValue(ClamavStage::trouble(policy, "timeout", 0), "X-Virus-Status") == "Unscanned");
}

BOOST_AUTO_TEST_SUITE_END()
