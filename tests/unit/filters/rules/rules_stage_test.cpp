#include <boost/test/unit_test.hpp>

#include "filters/rules/rules_stage.h"

namespace mailgate {
namespace {

rules::ScanResult scanOf(double score, std::vector<std::string> names = {}) {
  rules::ScanResult scan;
  scan.score = score;
  for (auto& name : names) scan.hits.push_back({std::move(name), 1.0, "described"});
  return scan;
}

// The field the stage adds (removal-only entries, with an empty value, are not added).
const HeaderField* field(const Verdict& verdict, const std::string& name) {
  for (const auto& header : verdict.headers)
    if (header.name == name && !header.value.empty()) return &header;
  return nullptr;
}

bool removes(const Verdict& verdict, const std::string& name) {
  for (const auto& header : verdict.headers)
    if (header.name == name && header.value.empty() && header.replaces) return true;
  return false;
}

int kind(const Verdict& verdict) { return static_cast<int>(verdict.kind); }

}  // namespace

BOOST_AUTO_TEST_SUITE(rules_stage)

BOOST_AUTO_TEST_CASE(under_tag_score_status_no_and_any_outside_flag_removed) {
  Verdict verdict = RulesStage::decide(scanOf(1.5, {"A_RULE"}), RulesStage::Policy{}, "hello");
  BOOST_TEST(kind(verdict) == static_cast<int>(Verdict::Kind::Continue));
  BOOST_REQUIRE(field(verdict, "X-Spam-Status") != nullptr);
  BOOST_TEST(field(verdict, "X-Spam-Status")->value == "No, score=1.5 required=5.0 tests=A_RULE");
  BOOST_TEST(field(verdict, "X-Spam-Score")->value == "1.5");
  BOOST_TEST(field(verdict, "X-Spam-Flag") == nullptr);
  for (const char* name : {"X-Spam-Score", "X-Spam-Status", "X-Spam-Flag"}) BOOST_TEST(removes(verdict, name), name);
  BOOST_TEST(field(verdict, "Subject") == nullptr);
  BOOST_TEST(verdict.score == 1.5);
}

BOOST_AUTO_TEST_CASE(at_tag_score_flagged_tagged_and_prefixed) {
  RulesStage::Policy policy;
  policy.subject_prefix = "[SPAM]";
  Verdict verdict = RulesStage::decide(scanOf(5.0, {"A", "B"}), policy, "=?UTF-8?B?w6k=?=\r\n more");
  BOOST_TEST(kind(verdict) == static_cast<int>(Verdict::Kind::Tag));
  BOOST_TEST(field(verdict, "X-Spam-Flag")->value == "YES");
  BOOST_TEST(field(verdict, "X-Spam-Status")->value == "Yes, score=5.0 required=5.0 tests=A,B");
  BOOST_REQUIRE(field(verdict, "Subject") != nullptr);
  BOOST_TEST(field(verdict, "Subject")->value == "[SPAM] =?UTF-8?B?w6k=?=\r\n more");
  BOOST_TEST(field(verdict, "Subject")->replaces);
  // No Subject in the message: nothing to prefix.
  BOOST_TEST(field(RulesStage::decide(scanOf(9), policy, std::nullopt), "Subject") == nullptr);
}

BOOST_AUTO_TEST_CASE(tempfail_and_reject_scores) {
  RulesStage::Policy policy;
  policy.tempfail_score = 8;
  policy.reject_score = 12;
  policy.reject_text = "Spam is not welcome here";
  Verdict deferred = RulesStage::decide(scanOf(8), policy, std::nullopt);
  BOOST_TEST(kind(deferred) == static_cast<int>(Verdict::Kind::TempFail));
  BOOST_TEST(deferred.reply.summary() == "451 4.7.1 Message deferred as possible spam, try again later");
  Verdict refused = RulesStage::decide(scanOf(12.5, {"X"}), policy, std::nullopt);
  BOOST_TEST(kind(refused) == static_cast<int>(Verdict::Kind::Reject));
  BOOST_TEST(refused.reply.summary() == "550 5.7.1 Spam is not welcome here");
  BOOST_TEST(refused.reason == "score 12.5 (X)");
  BOOST_TEST(field(refused, "X-Spam-Status") == nullptr);
  BOOST_TEST(removes(refused, "X-Spam-Flag"));
}

BOOST_AUTO_TEST_CASE(a_long_test_list_is_folded_after_a_comma) {
  std::vector<std::string> names;
  for (int i = 0; i < 12; ++i) names.push_back("A_FAIRLY_LONG_RULE_NAME_" + std::to_string(i));
  std::string value = field(RulesStage::decide(scanOf(3, names), RulesStage::Policy{}, std::nullopt), "X-Spam-Status")->value;
  BOOST_TEST(value.find(",\r\n\t") != std::string::npos);
  std::size_t start = 0;
  while (start < value.size()) {
    std::size_t end = value.find("\r\n", start);
    std::size_t length = (end == std::string::npos ? value.size() : end) - start;
    BOOST_TEST(length <= 78u + 30u);
    start = end == std::string::npos ? value.size() : end + 2;
  }
  std::string unfolded;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value.compare(i, 3, "\r\n\t") == 0) i += 2;
    else unfolded += value[i];
  }
  BOOST_TEST(unfolded.find("tests=A_FAIRLY_LONG_RULE_NAME_0,A_FAIRLY_LONG_RULE_NAME_1,") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(scores_print_with_one_decimal) {
  BOOST_TEST(formatScore(7.25) == "7.3");
  BOOST_TEST(formatScore(-0.5) == "-0.5");
  BOOST_TEST(formatScore(-0.01) == "0.0");
  BOOST_TEST(formatScore(0) == "0.0");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
