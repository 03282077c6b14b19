#include <boost/test/unit_test.hpp>

#include "filters/author_domains.h"
#include "filters/dmarc/dmarc_check.h"
#include "filters/dmarc/dmarc_stage.h"
#include "tests/unit/filters/spf/memory_dns.h"

namespace mailgate {
namespace {

struct PublicSuffixList {
  PublicSuffixList() {
    auto loaded = initialiseDmarcLibrary("/usr/share/publicsuffix/public_suffix_list.dat");
    BOOST_REQUIRE_MESSAGE(loaded.has_value(), "the publicsuffix package is needed: " + (loaded ? "" : loaded.error()));
  }
};

SpfFact spfPass(std::string domain) { return SpfFact{"pass", std::move(domain), false}; }
DkimFact dkimPass(std::string domain) { return DkimFact{"pass", std::move(domain), "s1"}; }

DmarcEvaluation evaluate(const test::MemoryDns& dns, const std::string& from, std::optional<SpfFact> spf,
                         std::vector<DkimFact> dkim = {}, int sample = 0) {
  return evaluateDmarc(dns, from, "192.0.2.1", spf, dkim, sample);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(dmarc, PublicSuffixList)

BOOST_AUTO_TEST_CASE(author_domains_come_from_the_one_from_field) {
  auto one = authorDomains("Subject: x\r\nFrom: \"Smith, J\" <J@Mail.Example.COM>\r\nTo: b@example.org\r\n\r\nFrom: body@x.example\r\n");
  BOOST_TEST(static_cast<int>(one.problem) == static_cast<int>(AuthorDomains::Problem::None));
  BOOST_TEST(one.domains == std::vector<std::string>{"mail.example.com"});
  auto folded = authorDomains("from:\r\n =?UTF-8?B?w4lyaWM=?= <eric@example.net>,\r\n\tbob@example.org, (c) eve@example.net\r\n\r\n");
  BOOST_TEST(folded.domains == (std::vector<std::string>{"example.net", "example.org"}));
  auto group = authorDomains("From: Team: a@one.example, b@two.example;\r\n\r\n");
  BOOST_TEST(group.domains == (std::vector<std::string>{"one.example", "two.example"}));
  BOOST_TEST(static_cast<int>(authorDomains("Subject: none\r\n\r\n").problem) ==
             static_cast<int>(AuthorDomains::Problem::NoFromField));
  BOOST_TEST(static_cast<int>(authorDomains("From: a@x.example\r\nFROM: b@y.example\r\n\r\n").problem) ==
             static_cast<int>(AuthorDomains::Problem::SeveralFromFields));
  BOOST_TEST(static_cast<int>(authorDomains("From: undisclosed\r\n\r\n").problem) ==
             static_cast<int>(AuthorDomains::Problem::NoDomain));
}

BOOST_AUTO_TEST_CASE(organizational_domains_follow_the_public_suffix_list) {
  BOOST_TEST(organizationalDomain("a.b.example.co.uk") == "example.co.uk");
  BOOST_TEST(organizationalDomain("www.example.com") == "example.com");
  BOOST_TEST(organizationalDomain("example.com") == "example.com");
  // Not in the list: the default rule "*" makes the TLD the public suffix.
  BOOST_TEST(organizationalDomain("mail.brand.example") == "brand.example");
  BOOST_TEST(organizationalDomain("brand.example") == "brand.example");
  BOOST_TEST(aligned("bounce.brand.example", "brand.example", false));
  BOOST_TEST(aligned("a.brand.example", "b.brand.example", false));
  BOOST_TEST(!aligned("bounce.brand.example", "brand.example", true));
  BOOST_TEST(aligned("Brand.Example.", "brand.example", true));
  BOOST_TEST(!aligned("evil.example", "brand.example", false));
  BOOST_TEST(!aligned("example.co.uk", "other.co.uk", false));
  BOOST_TEST(!aligned("co.uk", "example.co.uk", false));
}

BOOST_AUTO_TEST_CASE(an_aligned_pass_of_either_check_passes) {
  test::MemoryDns dns;
  dns.addTxt("_dmarc.brand.example", {"v=DMARC1; p=reject"});
  auto by_spf = evaluate(dns, "brand.example", spfPass("bounce.brand.example"));
  BOOST_TEST(by_spf.result == "pass");
  BOOST_TEST(by_spf.spf_aligned);
  auto by_dkim = evaluate(dns, "brand.example", SpfFact{"fail", "brand.example", false}, {dkimPass("brand.example")});
  BOOST_TEST(by_dkim.result == "pass");
  BOOST_TEST(by_dkim.dkim_aligned);
  auto unaligned = evaluate(dns, "brand.example", spfPass("other.example"), {dkimPass("other.example")});
  BOOST_TEST(unaligned.result == "fail");
  BOOST_TEST(unaligned.disposition == "reject");
  BOOST_TEST(unaligned.policy == "reject");
}

BOOST_AUTO_TEST_CASE(strict_alignment_wants_the_same_domain) {
  test::MemoryDns dns;
  dns.addTxt("_dmarc.brand.example", {"v=DMARC1; p=quarantine; aspf=s; adkim=s"});
  BOOST_TEST(evaluate(dns, "brand.example", spfPass("bounce.brand.example")).result == "fail");
  BOOST_TEST(evaluate(dns, "brand.example", std::nullopt, {dkimPass("mail.brand.example")}).result == "fail");
  BOOST_TEST(evaluate(dns, "brand.example", spfPass("brand.example")).result == "pass");
}

BOOST_AUTO_TEST_CASE(subdomains_use_the_organizational_record_and_its_sp) {
  test::MemoryDns dns;
  dns.addTxt("_dmarc.org.example", {"v=DMARC1; p=none; sp=reject"});
  auto sub = evaluate(dns, "sub.org.example", std::nullopt);
  BOOST_TEST(sub.result == "fail");
  BOOST_TEST(sub.record_domain == "org.example");
  BOOST_TEST(sub.policy == "reject");
  BOOST_TEST(sub.disposition == "reject");
  auto top = evaluate(dns, "org.example", std::nullopt);
  BOOST_TEST(top.policy == "none");
  BOOST_TEST(top.disposition == "none");
  test::MemoryDns no_sp;
  no_sp.addTxt("_dmarc.org.example", {"v=DMARC1; p=quarantine"});
  BOOST_TEST(evaluate(no_sp, "deep.sub.org.example", std::nullopt).disposition == "quarantine");
}

BOOST_AUTO_TEST_CASE(pct_samples_and_the_rest_get_the_milder_policy) {
  test::MemoryDns dns;
  dns.addTxt("_dmarc.brand.example", {"v=DMARC1; p=reject; pct=30"});
  BOOST_TEST(evaluate(dns, "brand.example", std::nullopt, {}, 29).disposition == "reject");
  BOOST_TEST(evaluate(dns, "brand.example", std::nullopt, {}, 30).disposition == "quarantine");
  test::MemoryDns quarantine;
  quarantine.addTxt("_dmarc.brand.example", {"v=DMARC1; p=quarantine; pct=0"});
  BOOST_TEST(evaluate(quarantine, "brand.example", std::nullopt, {}, 0).disposition == "none");
}

BOOST_AUTO_TEST_CASE(no_record_dns_trouble_and_bad_records) {
  test::MemoryDns dns;
  dns.addTxt("_dmarc.other.example", {"some-verification=abc"});
  dns.addServFail("_dmarc.broken.example");
  dns.addTxt("_dmarc.twice.example", {"v=DMARC1; p=none"});
  dns.addTxt("_dmarc.twice.example", {"v=DMARC1; p=reject"});
  dns.addTxt("_dmarc.nop.example", {"v=DMARC1; rua=mailto:x@nop.example"});
  BOOST_TEST(evaluate(dns, "none.example", std::nullopt).result == "none");
  BOOST_TEST(evaluate(dns, "other.example", std::nullopt).result == "none");
  BOOST_TEST(evaluate(dns, "broken.example", std::nullopt).result == "temperror");
  BOOST_TEST(evaluate(dns, "twice.example", std::nullopt).result == "permerror");
  BOOST_TEST(evaluate(dns, "nop.example", std::nullopt).result == "permerror");  // p= is required
}

BOOST_AUTO_TEST_CASE(a_temporary_error_of_an_aligned_check_is_not_a_fail) {
  test::MemoryDns dns;
  dns.addTxt("_dmarc.brand.example", {"v=DMARC1; p=reject"});
  auto evaluation = evaluate(dns, "brand.example", std::nullopt, {DkimFact{"temperror", "brand.example", "s1"}});
  BOOST_TEST(evaluation.result == "temperror");
}

BOOST_AUTO_TEST_CASE(the_strictest_failing_author_domain_decides) {
  DmarcEvaluation pass;
  pass.result = "pass";
  pass.author_domain = "good.example";
  pass.p = pass.policy = "reject";
  pass.disposition = "none";
  DmarcEvaluation fail = pass;
  fail.result = "fail";
  fail.author_domain = "bad.example";
  fail.disposition = "reject";
  AuthorDomains authors;
  authors.domains = {"good.example", "bad.example"};
  DmarcStage::Policy policy;
  Verdict verdict = DmarcStage::decide(authors, {pass, fail}, policy);
  BOOST_TEST(verdict.reply.code() == 550);
  BOOST_TEST(verdict.reply.enhanced() == "5.7.26");
  policy.on_policy_reject = PolicyAction::Tag;
  verdict = DmarcStage::decide(authors, {pass, fail}, policy);
  BOOST_TEST(!verdict.ends());
  BOOST_REQUIRE_EQUAL(verdict.auth_results.size(), 2u);
  BOOST_TEST(verdict.auth_results[0] == "dmarc=pass (p=reject dis=none) header.from=good.example");
  BOOST_TEST(verdict.auth_results[1] == "dmarc=fail (p=reject dis=reject) header.from=bad.example");
  // Issue 12, RFC 8601 §2.2: a From: domain that is not a token is quoted, one that cannot be
  // written as it is is left out.
  fail.author_domain = "bank.example(.evil.example";
  pass.author_domain = "b\xc3\xbcro.example";
  authors.domains = {pass.author_domain, fail.author_domain};
  verdict = DmarcStage::decide(authors, {pass, fail}, policy);
  BOOST_REQUIRE_EQUAL(verdict.auth_results.size(), 2u);
  BOOST_TEST(verdict.auth_results[0] == "dmarc=pass (p=reject dis=none)");
  BOOST_TEST(verdict.auth_results[1] == "dmarc=fail (p=reject dis=reject) header.from=\"bank.example(.evil.example\"");
}

BOOST_AUTO_TEST_CASE(a_policy_the_site_tempfails_is_a_451_4_7_26) {
  DmarcEvaluation fail;
  fail.result = "fail";
  fail.author_domain = "bad.example";
  fail.p = fail.policy = fail.disposition = "reject";
  AuthorDomains authors;
  authors.domains = {"bad.example"};
  DmarcStage::Policy policy;
  policy.on_policy_reject = PolicyAction::TempFail;
  Verdict verdict = DmarcStage::decide(authors, {fail}, policy);
  BOOST_TEST((verdict.kind == Verdict::Kind::TempFail));
  BOOST_TEST(verdict.reply.code() == 451);
  BOOST_TEST(verdict.reply.enhanced() == "4.7.26");
  BOOST_TEST(verdict.reply.text().find("bad.example is deferred due to domain's DMARC policy") != std::string::npos,
             verdict.reply.summary());
}

BOOST_AUTO_TEST_CASE(quarantine_is_tagged_and_a_missing_from_refused_by_default) {
  DmarcEvaluation fail;
  fail.result = "fail";
  fail.author_domain = "q.example";
  fail.p = fail.policy = fail.disposition = "quarantine";
  AuthorDomains authors;
  authors.domains = {"q.example"};
  Verdict tagged = DmarcStage::decide(authors, {fail}, DmarcStage::Policy{});
  BOOST_TEST(static_cast<int>(tagged.kind) == static_cast<int>(Verdict::Kind::Tag));
  AuthorDomains missing;
  missing.problem = AuthorDomains::Problem::SeveralFromFields;
  Verdict refused = DmarcStage::decide(missing, {}, DmarcStage::Policy{});
  BOOST_TEST(refused.reply.code() == 550);
  BOOST_TEST(refused.reply.enhanced() == "5.7.1");
  DmarcStage::Policy deferring;
  deferring.on_invalid_from = PolicyAction::TempFail;
  Verdict deferred = DmarcStage::decide(missing, {}, deferring);
  BOOST_TEST(deferred.reply.summary() == "451 4.7.1 Message must have exactly one From: field with an address, try again later");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
