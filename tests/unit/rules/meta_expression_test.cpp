// Meta expressions: the parser and evaluator on their own (Perl's precedence and values), then
// every operator in `meta` rules over real hits.

#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <vector>

#include "rule_test_support.h"
#include "rules/meta_expression.h"

namespace mailgate::rules {
namespace {

using test::findHit;
using test::loadRules;
using test::scanNames;

// Evaluates `text` with the names A, B, C, D reading `values` (in that order).
double evaluated(const std::string& text, std::vector<double> values) {
  auto expression = MetaExpression::parse(text);
  BOOST_REQUIRE_MESSAGE(expression.has_value(), "'" << text << "' does not parse");
  expression->bind(
      [](std::string_view name) -> std::optional<std::size_t> {
        if (name.size() == 1 && name[0] >= 'A' && name[0] <= 'D') return static_cast<std::size_t>(name[0] - 'A');
        return std::nullopt;
      },
      [](std::string_view) { return std::vector<std::size_t>{0, 1}; });
  values.resize(4, 0.0);
  return expression->evaluate(values);
}

// Three body rules the metas below read: A hits "alpha", B "beta", C "gamma".
const std::string kBodyRules =
    "body A /alpha/\n"
    "body B /beta/\n"
    "body C /gamma/\n";

std::string message(const std::string& body) { return "Subject: meta\n\n" + body + "\n"; }

}  // namespace

BOOST_AUTO_TEST_SUITE(meta_expression)

BOOST_AUTO_TEST_CASE(precedence_follows_perl) {
  BOOST_TEST(evaluated("1 + 2 * 3", {}) == 7);
  BOOST_TEST(evaluated("(1 + 2) * 3", {}) == 9);
  BOOST_TEST(evaluated("10 - 4 - 3", {}) == 3);  // left associative
  BOOST_TEST(evaluated("A + B > 1", {1, 1}) == 1);
  BOOST_TEST(evaluated("A || B && C", {1, 0, 0}) == 1);  // && binds tighter than ||
  BOOST_TEST(evaluated("(A || B) && C", {1, 0, 0}) == 0);
  BOOST_TEST(evaluated("!A && B", {0, 1}) == 1);  // ! binds tighter than &&
  BOOST_TEST(evaluated("!(A && B)", {1, 1}) == 0);
  BOOST_TEST(evaluated("A == 1 || B", {2, 0}) == 0);
  BOOST_TEST(evaluated("-A + 3", {1}) == 2);
}

BOOST_AUTO_TEST_CASE(values_are_perls) {
  // && and || give one of their operands, comparisons 1 or 0.
  BOOST_TEST(evaluated("A && B", {2, 3}) == 3);
  BOOST_TEST(evaluated("A || B", {2, 3}) == 2);
  BOOST_TEST(evaluated("A || B", {0, 3}) == 3);
  BOOST_TEST(evaluated("A >= 2", {2}) == 1);
  BOOST_TEST(evaluated("A <= 1", {2}) == 0);
  BOOST_TEST(evaluated("A != B", {2, 2}) == 0);
  BOOST_TEST(evaluated("A < B", {1, 2}) == 1);
  BOOST_TEST(evaluated("A ? B : C", {1, 5, 7}) == 5);
  BOOST_TEST(evaluated("A ? B : C", {0, 5, 7}) == 7);
  BOOST_TEST(evaluated("A / B", {1, 0}) == 0);  // no division by zero
  BOOST_TEST(evaluated("unknown_rule + 1", {}) == 1);  // an unknown name reads as 0
  BOOST_TEST(evaluated("rules_matching(X*) > 1", {1, 1}) == 1);
}

BOOST_AUTO_TEST_CASE(malformed_expressions_are_refused) {
  for (const char* text : {"A &&", "(A || B", "A B", "A + * B", "1A", "", "A ? B", "A ) B"}) {
    BOOST_TEST(!MetaExpression::parse(text).has_value(), "'" << text << "' parses");
  }
  std::string deep(MetaExpression::max_depth + 10, '(');
  deep += "A" + std::string(MetaExpression::max_depth + 10, ')');
  BOOST_TEST(!MetaExpression::parse(deep).has_value());
}

BOOST_AUTO_TEST_CASE(names_and_constant_value) {
  auto expression = MetaExpression::parse("A && (B || !A) && C");
  BOOST_REQUIRE(expression.has_value());
  BOOST_TEST(expression->names() == (std::vector<std::string>{"A", "B", "C"}), boost::test_tools::per_element());
  expression->bind([](std::string_view name) -> std::optional<std::size_t> { return static_cast<std::size_t>(name[0] - 'A'); },
                   [](std::string_view) { return std::vector<std::size_t>{}; });
  // C can never hit: the meta can never be true, whatever A and B do.
  std::vector<std::optional<double>> known = {std::nullopt, std::nullopt, 0.0};
  BOOST_TEST((expression->constantValue(known) == std::optional<double>(0.0)));
  known[2] = std::nullopt;
  BOOST_TEST(!expression->constantValue(known).has_value());
}

BOOST_AUTO_TEST_CASE(and_or_not_and_parentheses_in_rules) {
  auto set = loadRules(kBodyRules +
                       "meta M_AND A && B\n"
                       "meta M_OR A || C\n"
                       "meta M_NOT A && !C\n"
                       "meta M_PAREN (A || C) && B\n");
  BOOST_TEST(scanNames(*set, message("alpha beta")) == "A,B,M_AND,M_NOT,M_OR,M_PAREN");
  BOOST_TEST(scanNames(*set, message("alpha gamma")) == "A,C,M_OR");
  BOOST_TEST(scanNames(*set, message("beta gamma")) == "B,C,M_OR,M_PAREN");
  BOOST_TEST(scanNames(*set, message("nothing")) == "");
}

BOOST_AUTO_TEST_CASE(arithmetic_and_comparisons_in_rules) {
  auto set = loadRules(kBodyRules +
                       "meta M_TWO (A + B + C) > 1\n"
                       "meta M_ALL (A + B + C) >= 3\n"
                       "meta M_ONE (A + B + C) == 1\n"
                       "meta M_NONE_BUT_A A - B - C == 1\n");
  BOOST_TEST(scanNames(*set, message("alpha")) == "A,M_NONE_BUT_A,M_ONE");
  BOOST_TEST(scanNames(*set, message("alpha beta")) == "A,B,M_TWO");
  BOOST_TEST(scanNames(*set, message("alpha beta gamma")) == "A,B,C,M_ALL,M_TWO");
}

BOOST_AUTO_TEST_CASE(meta_of_meta_and_subrules) {
  auto set = loadRules(
      "body __SUB_A /alpha/\n"
      "body __SUB_B /beta/\n"
      "meta __BOTH __SUB_A && __SUB_B\n"
      "meta TOP __BOTH && !GAMMA\n"
      "body GAMMA /gamma/\n"
      "meta TOP_OF_TOP TOP\n");
  // Subrules count in metas but are never listed; a meta may read a rule defined after it.
  BOOST_TEST(scanNames(*set, message("alpha beta")) == "TOP,TOP_OF_TOP");
  BOOST_TEST(scanNames(*set, message("alpha beta gamma")) == "GAMMA");
  BOOST_TEST(scanNames(*set, message("alpha")) == "");
}

BOOST_AUTO_TEST_CASE(meta_reads_multiple_hit_counts) {
  auto set = loadRules(
      "body __LINK /click/\n"
      "tflags __LINK multiple\n"
      "meta MANY_LINKS __LINK > 2\n"
      "meta RULES_MATCHING rules_matching(__LI*) >= 3\n");
  BOOST_TEST(scanNames(*set, message("click click click")) == "MANY_LINKS,RULES_MATCHING");
  BOOST_TEST(scanNames(*set, message("click click")) == "");
}

BOOST_AUTO_TEST_CASE(a_meta_scores_once_whatever_its_value) {
  auto set = loadRules(kBodyRules +
                       "meta SUM A + B + C\n"
                       "score SUM 1.5\n"
                       "score A 0.1\nscore B 0.1\nscore C 0.1\n");
  ScanResult result = set->scan(MessageView::parse(message("alpha beta gamma")));
  const RuleHit* hit = findHit(result, "SUM");
  BOOST_REQUIRE(hit != nullptr);
  BOOST_TEST(hit->score == 1.5);
  BOOST_TEST(result.score == 1.8, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(circular_metas_fail_the_load_with_their_lines) {
  auto report = test::lintRules("meta LOOP_A LOOP_B\nmeta LOOP_B LOOP_A && 1\nmeta FINE LOOP_A || 1\n");
  BOOST_TEST(test::mentions(report.errors, "LOOP_A: circular"));
  BOOST_TEST(test::mentions(report.errors, "LOOP_B: circular"));
  const Problem* loop = test::problemAbout(report.errors, "LOOP_A");
  BOOST_REQUIRE(loop != nullptr);
  BOOST_TEST(loop->line == 1);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate::rules
