// What rule files say besides the rules themselves — score, describe, tflags, include,
// if/ifplugin blocks, comments — and what lint reports about them: errors with file:line, lines
// skipped as unsupported (never fatal), rules that can never match.

#include <boost/test/unit_test.hpp>

#include <string>

#include "rule_test_support.h"

namespace mailgate::rules {
namespace {

using test::findHit;
using test::joined;
using test::loadRules;
using test::lintRules;
using test::mentions;
using test::problemAbout;
using test::RuleDir;
using test::scanNames;

std::string message(const std::string& body) { return "Subject: files\n\n" + body + "\n"; }

double scoreOf(const RuleSet& set, const std::string& body, const std::string& rule) {
  ScanResult result = set.scan(MessageView::parse(message(body)));
  const RuleHit* hit = findHit(result, rule);
  BOOST_REQUIRE_MESSAGE(hit != nullptr, rule << " does not hit; hits: " << test::hitNames(result));
  return hit->score;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rule_files)

BOOST_AUTO_TEST_CASE(score_takes_the_first_of_four_score_sets) {
  auto set = loadRules(
      "body ONE /word/\nscore ONE 2.5\n"
      "body FOUR /word/\nscore FOUR 1.25 2 3 4\n"
      "body DEFAULT /word/\n"
      "body T_TESTING /word/\n");
  BOOST_TEST(scoreOf(*set, "word", "ONE") == 2.5);
  BOOST_TEST(scoreOf(*set, "word", "FOUR") == 1.25);
  BOOST_TEST(scoreOf(*set, "word", "DEFAULT") == 1.0);
  BOOST_TEST(scoreOf(*set, "word", "T_TESTING") == 0.01);
}

BOOST_AUTO_TEST_CASE(score_zero_disables_the_rule_everywhere) {
  LintReport report;
  auto set = loadRules(
      "body OFF /word/\nscore OFF 0\n"
      "body OFF_IN_SET_0 /word/\nscore OFF_IN_SET_0 0 1 1 1\n"
      "meta READS_OFF OFF\n",
      &report);
  BOOST_TEST(scanNames(*set, message("word")) == "");
  BOOST_TEST(mentions(report.never_match, "OFF: disabled by score 0"));
  BOOST_TEST(mentions(report.never_match, "OFF_IN_SET_0: disabled by score 0"));
  BOOST_TEST(mentions(report.never_match, "READS_OFF: meta can never be true"));
}

BOOST_AUTO_TEST_CASE(a_later_score_or_definition_replaces_the_earlier) {
  auto set = loadRules(
      "body RULE /first/\nscore RULE 1\n"
      "body RULE /second/\nscore RULE 3\n");
  BOOST_TEST(scanNames(*set, message("first")) == "");
  BOOST_TEST(scoreOf(*set, "second", "RULE") == 3.0);
}

BOOST_AUTO_TEST_CASE(malformed_scores_are_errors) {
  auto report = lintRules("body R /x/\nscore R 1 2\nbody S /x/\nscore S high\n");
  BOOST_TEST(mentions(report.errors, "score R: expected one score or four"));
  BOOST_TEST(mentions(report.errors, "score S"));
  const Problem* problem = problemAbout(report.errors, "score R");
  BOOST_REQUIRE(problem != nullptr);
  BOOST_TEST(problem->line == 2);
}

BOOST_AUTO_TEST_CASE(describe_is_reported_with_the_hit) {
  auto set = loadRules("body RULE /word/\ndescribe RULE Says the word   twice\n");
  ScanResult result = set->scan(MessageView::parse(message("word")));
  BOOST_REQUIRE(findHit(result, "RULE") != nullptr);
  BOOST_TEST(findHit(result, "RULE")->description == "Says the word   twice");
}

BOOST_AUTO_TEST_CASE(tflags_nice_makes_the_default_score_negative_and_allows_a_negative_one) {
  auto set = loadRules(
      "body NICE_DEFAULT /word/\ntflags NICE_DEFAULT nice\n"
      "body NICE_SCORED /word/\ntflags NICE_SCORED nice noautolearn\nscore NICE_SCORED -2.5\n");
  ScanResult result = set->scan(MessageView::parse(message("word")));
  BOOST_TEST(scoreOf(*set, "word", "NICE_DEFAULT") == -1.0);
  BOOST_TEST(scoreOf(*set, "word", "NICE_SCORED") == -2.5);
  BOOST_TEST(result.score == -3.5);
}

BOOST_AUTO_TEST_CASE(tflags_multiple_counts_every_match_up_to_maxhits) {
  auto set = loadRules(
      "body ONCE /spam/\nscore ONCE 0.5\n"
      "body MANY /spam/\ntflags MANY multiple\nscore MANY 0.5\n"
      "body CAPPED /spam/\ntflags CAPPED multiple maxhits=2\nscore CAPPED 0.5\n"
      "header HDR_MANY Subject =~ /i/\ntflags HDR_MANY multiple\n");
  const std::string body = "spam spam\nmore text\n\nspam and spam";
  BOOST_TEST(scoreOf(*set, body, "ONCE") == 0.5);
  BOOST_TEST(scoreOf(*set, body, "MANY") == 2.0);
  BOOST_TEST(scoreOf(*set, body, "CAPPED") == 1.0);
  BOOST_TEST(scoreOf(*set, body, "HDR_MANY") == 1.0);  // "files" has one i
}

BOOST_AUTO_TEST_CASE(include_reads_a_file_relative_to_the_including_one) {
  RuleDir dir;
  dir.write("sub/more.cf", "body INCLUDED /included/\nscore INCLUDED 2\n");
  std::string main = dir.write("main.cf", "include sub/more.cf\nmeta USES INCLUDED\n");
  LintReport report;
  auto loaded = RuleSet::load({main}, &report);
  BOOST_REQUIRE_MESSAGE(loaded.has_value(), "does not load:" << (loaded ? std::string() : joined(loaded.error())));
  BOOST_TEST(report.rules == 2u);
  BOOST_TEST(scanNames(**loaded, message("included")) == "INCLUDED,USES");
}

BOOST_AUTO_TEST_CASE(a_missing_include_is_an_error_with_file_and_line) {
  RuleDir dir;
  std::string main = dir.write("main.cf", "body FINE /x/\n\ninclude nowhere.cf\n");
  auto loaded = RuleSet::load({main});
  BOOST_REQUIRE(!loaded.has_value());
  BOOST_REQUIRE(loaded.error().size() == 1u);
  BOOST_TEST(loaded.error()[0].file == main);
  BOOST_TEST(loaded.error()[0].line == 3);
  BOOST_TEST(loaded.error()[0].str().starts_with(main + ":3: include: cannot read"));
}

BOOST_AUTO_TEST_CASE(an_include_loop_ends_in_an_error) {
  RuleDir dir;
  dir.write("b.cf", "include a.cf\n");
  std::string a = dir.write("a.cf", "include b.cf\n");
  LintReport report = RuleSet::lint({a});
  BOOST_TEST(mentions(report.errors, "include nested more than"));
}

BOOST_AUTO_TEST_CASE(a_folder_reads_its_cf_files_in_name_order) {
  RuleDir dir;
  dir.write("20_later.cf", "score RULE 4\n");
  dir.write("10_first.cf", "body RULE /word/\nscore RULE 2\n");
  dir.write("notes.txt", "this is not a rule file\n");
  auto loaded = RuleSet::load({dir.path()});
  BOOST_REQUIRE(loaded.has_value());
  BOOST_TEST(scoreOf(**loaded, "word", "RULE") == 4.0);
}

BOOST_AUTO_TEST_CASE(if_and_ifplugin_blocks_are_kept_or_skipped_safely) {
  LintReport report;
  auto set = loadRules(
      "ifplugin Mail::SpamAssassin::Plugin::URIDNSBL\n"
      "urirhssub URIBL_X multi.uribl.com. A 2\n"
      "body IN_PERL_PLUGIN /word/\n"
      "endif\n"
      "ifplugin Mail::SpamAssassin::Plugin::MIMEHeader\n"
      "body IN_BUILTIN_PLUGIN /word/\n"
      "endif\n"
      "if version >= 3.004000\n"
      "body IN_NEW_VERSION /word/\n"
      "else\n"
      "body IN_ELSE /word/\n"
      "endif\n"
      "if (version < 3.000000)\n"
      "body IN_OLD_VERSION /word/\n"
      "endif\n"
      "if can(Mail::SpamAssassin::Conf::feature_bug6558_free)\n"
      "body IN_FEATURE /word/\n"
      "endif\n"
      "if !plugin(Mail::SpamAssassin::Plugin::Bayes)\n"
      "body NO_BAYES /word/\n"
      "endif\n",
      &report);
  BOOST_TEST(scanNames(*set, message("word")) == "IN_BUILTIN_PLUGIN,IN_FEATURE,IN_NEW_VERSION,NO_BAYES");
  BOOST_TEST(report.errors.empty());
  // The skipped plugin block is reported once, at its ifplugin line, and its lines are not.
  const Problem* block = problemAbout(report.skipped, "URIDNSBL");
  BOOST_REQUIRE(block != nullptr);
  BOOST_TEST(block->line == 1);
  BOOST_TEST(!mentions(report.skipped, "urirhssub"));
}

BOOST_AUTO_TEST_CASE(unbalanced_if_blocks_are_errors) {
  auto report = lintRules("if version >= 3.0\nbody A /a/\n");
  BOOST_TEST(mentions(report.errors, "'if' without 'endif'"));
  report = lintRules("body A /a/\nendif\n");
  BOOST_TEST(mentions(report.errors, "'endif' without 'if'"));
  BOOST_REQUIRE(!report.errors.empty());
  BOOST_TEST(report.errors[0].line == 2);
}

BOOST_AUTO_TEST_CASE(comments_end_at_an_unescaped_hash) {
  auto set = loadRules(
      "# a comment line\n"
      "   # an indented one\n"
      "body HASH /issue \\#\\d+/  # this part is a comment\n"
      "describe HASH Mentions an issue number like \\#12 # not this\n");
  ScanResult result = set->scan(MessageView::parse(message("see issue #42")));
  const RuleHit* hit = findHit(result, "HASH");
  BOOST_REQUIRE(hit != nullptr);
  BOOST_TEST(hit->description == "Mentions an issue number like #12");
  BOOST_TEST(scanNames(*set, message("see issue 42")) == "");
}

// Parser.pm splits a line at /\s+/: a form feed or vertical tab ends the keyword as a space does
// (found by tests/fuzz/rule_file_fuzz: "desc\fribe" was read as one unknown keyword).
BOOST_AUTO_TEST_CASE(any_blank_ends_the_keyword) {
  auto set = loadRules(
      "body ONE /word/\n"
      "score\fONE 2.5\n"
      "describe\vONE\f Has the word\n"
      "lang\ten\fdescribe ONE In English\n");
  ScanResult result = set->scan(MessageView::parse(message("a word")));
  const RuleHit* hit = findHit(result, "ONE");
  BOOST_REQUIRE(hit != nullptr);
  BOOST_TEST(hit->score == 2.5);
  BOOST_TEST(hit->description == "In English");
}

BOOST_AUTO_TEST_CASE(lint_errors_carry_file_and_line) {
  RuleDir dir;
  std::string file = dir.write("bad.cf",
                               "body GOOD /fine/\n"
                               "body BAD_REGEX /unclosed (group/\n"
                               "header BAD_HEADER Subject ~ /x/\n"
                               "body 9BAD_NAME /x/\n"
                               "meta BAD_META (GOOD &&\n"
                               "body NO_DELIMITERS word\n"
                               "body BAD_FLAG /x/q\n"
                               "header BAD_MODIFIER Subject:bogus =~ /x/\n");
  auto loaded = RuleSet::load({file});
  BOOST_REQUIRE(!loaded.has_value());
  LintReport report = RuleSet::lint({file});
  BOOST_TEST(report.errors.size() == 7u, joined(report.errors));
  for (const Problem& problem : report.errors) BOOST_TEST(problem.file == file);
  auto lineOf = [&](const std::string& needle) {
    const Problem* problem = problemAbout(report.errors, needle);
    return problem == nullptr ? -1 : problem->line;
  };
  BOOST_TEST(lineOf("BAD_REGEX") == 2);
  BOOST_TEST(lineOf("BAD_HEADER") == 3);
  BOOST_TEST(lineOf("9BAD_NAME") == 4);
  BOOST_TEST(lineOf("BAD_META") == 5);
  BOOST_TEST(lineOf("NO_DELIMITERS") == 6);
  BOOST_TEST(lineOf("BAD_FLAG") == 7);
  BOOST_TEST(lineOf("BAD_MODIFIER") == 8);
  // The good rule is still counted: lint reports on everything it could build.
  BOOST_TEST(report.rules == 1u);
}

BOOST_AUTO_TEST_CASE(unsupported_lines_are_skipped_never_fatal) {
  LintReport report;
  auto set = loadRules(
      "loadplugin Mail::SpamAssassin::Plugin::Foo Foo.pm\n"
      "loadplugin Mail::SpamAssassin::Plugin::ReplaceTags\n"
      "header EVAL_RULE eval:check_foo()\n"
      "body EVAL_BODY eval:check_bar('x')\n"
      "header HOST_MOD X-Relay:host =~ /example/\n"
      "header RELAYS X-Spam-Relays-External =~ /x/\n"
      "uridnsbl URIBL_SBL sbl.spamhaus.org. TXT\n"
      "report_safe 1\n"
      "body KEPT /word/\n"
      "meta USES_EVAL EVAL_RULE || KEPT\n"
      "score EVAL_RULE 1.0\n"
      "describe EVAL_RULE Skipped but described\n",
      &report);
  BOOST_TEST(report.errors.empty(), joined(report.errors));
  BOOST_TEST(mentions(report.skipped, "loadplugin Mail::SpamAssassin::Plugin::Foo"));
  BOOST_TEST(!mentions(report.skipped, "ReplaceTags"));  // built in
  BOOST_TEST(mentions(report.skipped, "EVAL_RULE: eval: tests are not supported"));
  BOOST_TEST(mentions(report.skipped, "EVAL_BODY"));
  BOOST_TEST(mentions(report.skipped, "HOST_MOD"));
  BOOST_TEST(mentions(report.skipped, "RELAYS"));
  BOOST_TEST(mentions(report.skipped, "uridnsbl"));
  BOOST_TEST(mentions(report.skipped, "report_safe"));
  const Problem* eval = problemAbout(report.skipped, "EVAL_RULE");
  BOOST_REQUIRE(eval != nullptr);
  BOOST_TEST(eval->line == 3);
  // A meta reading a skipped rule still runs; the skipped rule reads as 0.
  BOOST_TEST(report.rules == 2u);
  BOOST_TEST(scanNames(*set, message("word")) == "KEPT,USES_EVAL");
}

BOOST_AUTO_TEST_CASE(rules_that_can_never_match_are_reported) {
  auto report = lintRules(
      "body WIDE_CHAR /\\x{263A}/\n"
      "body EMPTY_CLASS /[\\x{100}-\\x{200}]/\n"
      "body FINE /\\x{41}/\n"
      "body __UNUSED_SUB /x/\n"
      "body __USED_SUB /y/\n"
      "meta NEEDS_IMPOSSIBLE __USED_SUB && WIDE_CHAR\n"
      "meta UNKNOWN_ONLY NO_SUCH_RULE\n");
  BOOST_TEST(report.errors.empty(), joined(report.errors));
  BOOST_TEST(mentions(report.never_match, "WIDE_CHAR: its regex can never match"));
  BOOST_TEST(mentions(report.never_match, "EMPTY_CLASS: its regex can never match"));
  BOOST_TEST(mentions(report.never_match, "__UNUSED_SUB: subrule read by no meta"));
  BOOST_TEST(mentions(report.never_match, "NEEDS_IMPOSSIBLE: meta can never be true"));
  BOOST_TEST(mentions(report.never_match, "UNKNOWN_ONLY: meta can never be true"));
  BOOST_TEST(mentions(report.skipped, "unknown rule NO_SUCH_RULE"));
  BOOST_TEST(!mentions(report.never_match, "FINE"));
  BOOST_TEST(!mentions(report.never_match, "__USED_SUB"));
  const Problem* wide = problemAbout(report.never_match, "WIDE_CHAR");
  BOOST_REQUIRE(wide != nullptr);
  BOOST_TEST(wide->line == 1);
}

BOOST_AUTO_TEST_CASE(replace_tags_expand_before_compiling) {
  auto set = loadRules(
      "replace_start <\nreplace_end >\n"
      "replace_tag FREE f(?:r|4)ee\n"
      "body FREE_STUFF /<FREE> stuff/i\n"
      "replace_rules FREE_STUFF\n");
  BOOST_TEST(scanNames(*set, message("get F4EE stuff now")) == "FREE_STUFF");
  BOOST_TEST(scanNames(*set, message("get fee stuff now")) == "");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate::rules
