// A scan's budget: classic catastrophic patterns against 1 MiB messages end within the scan's CPU
// budget (asserted with a wide margin: the point is "about the budget", not "minutes"), the hits
// found before count, the rules after are left out and named, a stop request ends a scan with no
// budget, and a match that runs out of steps is no hit (a negated rule included).

#include <time.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <stop_token>
#include <string>
#include <thread>

#include "rules/regex.h"
#include "tests/unit/rules/rule_test_support.h"

namespace mailgate::rules {
namespace {

using namespace std::chrono_literals;
using test::findHit;
using test::loadRules;

constexpr std::size_t mebibyte = 1024 * 1024;
// The bound asserted: the budget plus room for a loaded machine and a sanitizer build. Without a
// budget each of these scans takes seconds to minutes.
constexpr auto budget = 100ms;
constexpr auto bound = 600ms;

std::chrono::nanoseconds threadCpu() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

std::string repeat(const std::string& text, std::size_t times) {
  std::string out;
  out.reserve(text.size() * times);
  for (std::size_t i = 0; i < times; ++i) out += text;
  return out;
}

// The header of the messages below. Body rules see the Subject first, so it is the hostile text
// too: a body rule stops at its first hit, and (a|a?)+$ hits any harmless line at its end.
std::string head(const std::string& paragraph) {
  return "From: a@example.org\r\nTo: b@example.org\r\nSubject: " + paragraph.substr(0, paragraph.find('\r')) +
         "\r\n";
}

// A multipart message of about `bytes`: text parts of `paragraph` repeated, each part as much
// as a body rule reads of one (MessageView::body_part_scan_size).
std::string multipartMessage(const std::string& paragraph, std::size_t bytes) {
  const std::string part = repeat(paragraph, MessageView::body_part_scan_size / paragraph.size());
  std::string message = head(paragraph) + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"cut\"\r\n\r\n";
  while (message.size() < bytes) message += "--cut\r\nContent-Type: text/plain\r\n\r\n" + part + "\r\n";
  return message + "--cut--\r\n";
}

// A plain message of about `bytes`, `line` repeated.
std::string plainMessage(const std::string& line, std::size_t bytes) {
  return head(line) + "\r\n" + repeat(line, bytes / line.size());
}

struct Timed {
  ScanResult result;
  std::chrono::nanoseconds cpu;
};

Timed timedScan(const RuleSet& rules, const std::string& message, ScanLimits limits) {
  MessageView view = MessageView::parse(message);
  auto started = threadCpu();
  ScanResult result = rules.scan(view, std::move(limits));
  return {std::move(result), threadCpu() - started};
}

const CutRule* cutRule(const ScanResult& result, const std::string& name) {
  for (const auto& rule : result.cut_short)
    if (rule.name == name) return &rule;
  return nullptr;
}

// A subject rule that hits, the catastrophic rule, then a rule that would hit if it ran.
std::string ruleFile(const std::string& kind, const std::string& regex) {
  return "header EARLY To =~ /b\\@example\\.org/\nscore EARLY 3.0\n" + kind + " SLOW " + regex +
         "\nscore SLOW 1.0\nfull LATE /From:/\nscore LATE 1.0\n";
}

void checkCutShort(const std::string& kind, const std::string& regex, const std::string& message) {
  BOOST_TEST_CONTEXT(kind << " " << regex << " on " << message.size() << " octets") {
    auto rules = loadRules(ruleFile(kind, regex));
    Timed timed = timedScan(*rules, message, {budget, {}});
    BOOST_TEST(timed.cpu < bound, std::chrono::duration_cast<std::chrono::milliseconds>(timed.cpu).count() << " ms");
    BOOST_TEST((timed.result.stopped == ScanBudget::Stop::Spent));
    const CutRule* cut = cutRule(timed.result, "SLOW");
    BOOST_REQUIRE(cut != nullptr);
    BOOST_TEST(cut->why == "budget");
    BOOST_TEST(findHit(timed.result, "EARLY") != nullptr);  // found before: it counts
    BOOST_TEST(findHit(timed.result, "LATE") == nullptr);   // after: not run
    BOOST_TEST(timed.result.rules_not_run == 1u);
    BOOST_TEST(timed.result.score == 3.0);
  }
}

const std::string a24(24, 'a');

}  // namespace

BOOST_AUTO_TEST_SUITE(scan_budget)

// The message: paragraphs of 24 a's and a b, 1,900 to a part, each its own body line.
BOOST_AUTO_TEST_CASE(nested_quantifiers_on_many_paragraphs_stop_at_the_budget) {
  const std::string message = multipartMessage(a24 + "b\r\n\r\n", mebibyte);
  for (const char* regex : {"/(a+)+$/", "/(a|aa)+$/", "/(a|a?)+$/"}) checkCutShort("body", regex, message);
}

BOOST_AUTO_TEST_CASE(a_repeated_word_group_stops_at_the_budget) {
  checkCutShort("body", "/^(\\w+\\s?)*$/", multipartMessage(repeat("aaaa ", 17) + "aaaa!\r\n\r\n", mebibyte));
}

// One pcre2_match call on the whole message: PCRE2 counts its step limit from zero at each line
// start, so no single position reaches it; only the callout at each start position stops it.
BOOST_AUTO_TEST_CASE(one_long_match_stops_at_the_budget) {
  checkCutShort("full", "/(.*a){12}/", plainMessage(std::string(11, 'a') + std::string(900, 'x') + "\r\n", mebibyte));
  checkCutShort("full", "/(a+)+$/", plainMessage(std::string(16, 'a') + "b ", mebibyte));
}

BOOST_AUTO_TEST_CASE(rawbody_and_uri_rules_stop_at_the_budget_too) {
  checkCutShort("rawbody", "/(a|aa)+$/", multipartMessage(a24 + "b\r\n\r\n", mebibyte));
}

BOOST_AUTO_TEST_CASE(without_a_budget_a_stop_request_ends_the_scan) {
  auto rules = loadRules(ruleFile("body", "/(a|aa)+$/"));
  const std::string message = multipartMessage(a24 + "b\r\n\r\n", mebibyte);
  MessageView view = MessageView::parse(message);
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  auto started = std::chrono::steady_clock::now();
  ScanResult result = rules->scan(view, {std::nullopt, stop.get_token()});
  auto took = std::chrono::steady_clock::now() - started;
  BOOST_TEST(took < 50ms + bound, std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  BOOST_TEST((result.stopped == ScanBudget::Stop::Cancelled));
  BOOST_REQUIRE(cutRule(result, "SLOW") != nullptr);
  BOOST_TEST(cutRule(result, "SLOW")->why == "stopped");
  BOOST_TEST(findHit(result, "EARLY") != nullptr);
}

BOOST_AUTO_TEST_CASE(a_stop_requested_before_the_scan_runs_no_rule) {
  auto rules = loadRules(ruleFile("body", "/never/"));
  std::stop_source stop;
  stop.request_stop();
  ScanResult result = rules->scan(MessageView::parse(plainMessage("x\r\n", 100)), {std::nullopt, stop.get_token()});
  BOOST_TEST(result.hits.empty());
  BOOST_TEST(result.rules_not_run == 3u);
  BOOST_TEST((result.stopped == ScanBudget::Stop::Cancelled));
}

// A match that runs out of steps gives no answer: it is no hit, also for a negated rule (which
// used to read it as "did not match", so hit), and the scan goes on.
BOOST_AUTO_TEST_CASE(a_match_out_of_steps_is_no_hit_and_named) {
  auto rules = loadRules(
      "header NEG Subject !~ /^(a+)+$/\nscore NEG 5.0\n"
      "header POS Subject =~ /^(a+)+$/\nscore POS 5.0\n"
      "header OK Subject =~ /a!/\nscore OK 1.0\n");
  ScanResult result = rules->scan(MessageView::parse("Subject: " + std::string(40, 'a') + "!\r\n\r\nbody\r\n"));
  BOOST_TEST(test::hitNames(result) == "OK");
  BOOST_REQUIRE(result.cut_short.size() == 2u);
  BOOST_TEST(result.cut_short[0].name == "NEG");
  BOOST_TEST(result.cut_short[0].why == "step_limit");
  BOOST_TEST(result.cut_short[1].name == "POS");
  BOOST_TEST((result.stopped == ScanBudget::Stop::None));
}

BOOST_AUTO_TEST_CASE(a_scan_within_its_budget_is_whole) {
  auto rules = loadRules(ruleFile("body", "/(a+)+$/"));
  Timed timed = timedScan(*rules, plainMessage("hello world\r\n", 10'000), {budget, {}});
  BOOST_TEST(test::hitNames(timed.result) == "EARLY,LATE");
  BOOST_TEST(timed.result.cut_short.empty());
  BOOST_TEST(timed.result.rules_not_run == 0u);
  BOOST_TEST((timed.result.stopped == ScanBudget::Stop::None));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rule_regex_guard)

// A subject past regex_quick_subject_octets runs the guarded pattern (the callout that looks at
// the budget in front of a group holding the whole pattern, after PCRE2's start-of-pattern items;
// past a trailing comment or an open \Q); a shorter one runs the pattern as written first. Both
// answer alike; with the budget spent, the guarded one stops where it would have matched.
BOOST_AUTO_TEST_CASE(guarded_patterns_match_as_written) {
  using F = Regex::Found;
  struct Case {
    const char* regex;
    std::string subject;
    F found;
  };
  const Case cases[] = {
      {"/b|^a/", "xa", F::No},
      {"/b|^a/", "ab", F::Yes},
      {"/a # comment/x", "a", F::Yes},
      {"/\\Qa)b/", "a)b", F::Yes},
      {"/(*LF)(*LIMIT_MATCH=1000)^a$/m", "x\na", F::Yes},
      {"/(a)\\1/", "aa", F::Yes},
  };
  const std::string filler = "\n" + std::string(regex_quick_subject_octets, '-');
  for (const auto& test : cases) {
    BOOST_TEST_CONTEXT(test.regex << " on " << test.subject) {
      auto regex = Regex::parse(test.regex);
      BOOST_REQUIRE(regex.has_value());
      ScanBudget budget({std::chrono::seconds(10), {}});
      RegexScratch scratch(&budget);
      BOOST_TEST((regex->find(test.subject, scratch) == test.found));
      BOOST_TEST((regex->find(test.subject + filler, scratch) == test.found));
      std::stop_source stop;
      stop.request_stop();
      ScanBudget spent({std::nullopt, stop.get_token()});
      RegexScratch stopped(&spent);
      if (test.found == F::Yes) BOOST_TEST((regex->find(test.subject + filler, stopped) == F::Cut));
    }
  }
  BOOST_TEST(!Regex::parse("/a)(b/").has_value());  // unbalanced as written: refused, not wrapped
}

BOOST_AUTO_TEST_CASE(a_spent_budget_cuts_a_long_match_short) {
  auto regex = Regex::parse("/(a+)+$/");
  BOOST_REQUIRE(regex.has_value());
  std::stop_source stop;
  stop.request_stop();
  ScanBudget budget({std::nullopt, stop.get_token()});
  RegexScratch scratch(&budget);
  const std::string subject(regex_quick_subject_octets + 1, 'a');
  BOOST_TEST((regex->find(subject, scratch) == Regex::Found::Cut));
  BOOST_TEST(regex->count(subject, 5, scratch).cut);
  // A short subject is matched quickly, without the callout: the scan looks at the budget
  // before each match instead.
  BOOST_TEST((regex->find("aaa", scratch) == Regex::Found::Yes));
}

// A short subject that needs more steps than the quick limit at one position is matched again
// with the full limit: the same answer as a long one.
BOOST_AUTO_TEST_CASE(a_short_match_past_the_quick_limit_runs_again_guarded) {
  auto regex = Regex::parse("/^(a|aa)+$/");
  BOOST_REQUIRE(regex.has_value());
  RegexScratch scratch;
  const std::string subject = std::string(22, 'a') + "b";  // about 50,000 steps: no match
  BOOST_TEST((regex->find(subject, scratch) == Regex::Found::No));
  BOOST_TEST((regex->find(std::string(40, 'a') + "b", scratch) == Regex::Found::Cut));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate::rules
