#include <fcntl.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <stop_token>
#include <thread>
#include <variant>

#include "filters/rules/rules_stage.h"
#include "gateway/message/outgoing_message.h"
#include "gateway/spool/spool.h"
#include "rules/rule_set.h"
#include "tests/unit/temp_directory.h"
#include "tests/unit/sanitizer_pace.h"

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

// Whether a field `name` arriving from outside is dropped at delivery, as the relay drops them:
// the names of the verdict's replacing fields go to omittedHeaderFields.
bool removes(const Verdict& verdict, const std::string& name) {
  std::vector<std::string> replaced;
  for (const auto& header : verdict.headers)
    if (header.replaces) replaced.push_back(header.name);
  Spool spool(std::filesystem::temp_directory_path().string(), 1 << 20);
  BOOST_REQUIRE(spool.append(name + ": from outside\r\nTo: a\r\n\r\nbody\r\n"));
  auto ranges = omittedHeaderFields(spool, "mx.example.org", replaced);
  BOOST_REQUIRE(ranges);
  return ranges->size() == 1;
}

int kind(const Verdict& verdict) { return static_cast<int>(verdict.kind); }

// The descriptor of the spool's unlinked file in `directory` (the spool keeps it to itself).
int spoolFileDescriptor(const std::string& directory) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    std::string target = std::filesystem::read_symlink(entry.path(), error).string();
    if (!error && target.starts_with(directory + "/")) return std::stoi(entry.path().filename().string());
  }
  return -1;
}

std::string detail(const Verdict& verdict, const std::string& key) {
  for (const auto& [name, value] : verdict.details)
    if (name == key) return value.text();
  return "(absent)";
}

const std::vector<Details>* detailList(const Verdict& verdict, const std::string& key) {
  for (const auto& [name, items] : verdict.detail_lists)
    if (name == key) return &items;
  return nullptr;
}

// The hostile message, about 1 MiB: parts of 1,900 paragraphs of 24 a's and a b.
std::string hostileMessage() {
  std::string part;
  for (int i = 0; i < 1900; ++i) part += std::string(24, 'a') + "b\r\n\r\n";
  std::string message = "Subject: prize\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"cut\"\r\n\r\n";
  while (message.size() < 1024 * 1024) message += "--cut\r\nContent-Type: text/plain\r\n\r\n" + part;
  return message + "--cut--\r\n";
}

// Runs the stage's job on `content` with `stop`, as the thread pool would.
Verdict runJob(const RulesStage& stage, const std::string& content, std::stop_token stop) {
  auto spool = std::make_shared<Spool>("/tmp", 64 * 1024 * 1024);
  BOOST_REQUIRE(spool->append(content).has_value());
  StageInput input;
  input.phase = Phase::EndOfData;
  input.message = spool;
  input.message_size = spool->size();
  Step step = stage.check(input);
  BOOST_REQUIRE(std::holds_alternative<Job>(step));
  return std::get<Job>(step)(std::move(stop));
}

constexpr const char* hostile_rules = "header PRIZE Subject =~ /prize/\nscore PRIZE 16\nbody SLOW /(a+)+$/\nbody LATE /a/\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(rules_stage)

// A scan cut short decides on the hits it found (here enough to refuse) and says so in the log:
// why it stopped, how many rules did not run, and each rule cut short with the reason.
BOOST_AUTO_TEST_CASE(a_scan_cut_short_decides_on_its_hits_and_names_the_rules) {
  rules::ScanResult scan = scanOf(16, {"PRIZE"});
  scan.stopped = rules::ScanBudget::Stop::Spent;
  scan.rules_not_run = 7;
  scan.cut_short = {{"DEEP", "step_limit"}, {"SLOW", "budget"}};
  RulesStage::Policy policy;
  policy.reject_score = 15;
  Verdict verdict = RulesStage::decide(scan, policy, std::nullopt);
  BOOST_TEST(kind(verdict) == static_cast<int>(Verdict::Kind::Reject));
  BOOST_TEST(verdict.reason == "score 16.0 (PRIZE); scan cut short (budget), 7 rules not run");
  BOOST_TEST(detail(verdict, "scan_stopped") == "budget");
  BOOST_TEST(detail(verdict, "rules_not_run") == "7");
  const auto* cut = detailList(verdict, "cut_short");
  BOOST_REQUIRE(cut != nullptr);
  BOOST_REQUIRE(cut->size() == 2u);
  BOOST_TEST(((*cut)[0] == Details{{"rule", "DEEP"}, {"why", "step_limit"}}));
  BOOST_TEST(((*cut)[1] == Details{{"rule", "SLOW"}, {"why", "budget"}}));
  // A whole scan has none of these.
  Verdict whole = RulesStage::decide(scanOf(1), policy, std::nullopt);
  BOOST_TEST(detail(whole, "scan_stopped") == "(absent)");
  BOOST_TEST(detailList(whole, "cut_short") == nullptr);
}

// The job spends its scan_budget on the message (which took 18.5 s at 441 KB before),
// then decides: asserted with a wide margin for a loaded machine.
BOOST_AUTO_TEST_CASE(the_job_stops_at_its_scan_budget) {
  test::TempDirectory dir("mailgate-rules-stage-test");
  auto rules = rules::RuleSet::load({dir.write("rules.cf", hostile_rules)});
  BOOST_REQUIRE(rules.has_value());
  RulesStage::Policy policy;
  policy.reject_score = 15;
  BOOST_TEST(policy.scan_budget == std::chrono::milliseconds(100));  // the default
  RulesStage stage(*rules, policy);
  auto started = std::chrono::steady_clock::now();
  Verdict verdict = runJob(stage, hostileMessage(), std::stop_token());
  auto took = std::chrono::steady_clock::now() - started;
  BOOST_TEST(took < std::chrono::seconds(2) * test::sanitizer_pace, std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  BOOST_TEST(kind(verdict) == static_cast<int>(Verdict::Kind::Reject));
  BOOST_TEST(detail(verdict, "scan_stopped") == "budget");
  BOOST_TEST(detail(verdict, "rules_not_run") == "1");
  const auto* cut = detailList(verdict, "cut_short");
  BOOST_REQUIRE(cut != nullptr);
  BOOST_TEST(((*cut).back() == Details{{"rule", "SLOW"}, {"why", "budget"}}));
}

// The stage's timeout (the pool's stop request) ends the scan even when the budget would not.
BOOST_AUTO_TEST_CASE(the_job_stops_when_asked_to) {
  test::TempDirectory dir("mailgate-rules-stage-test");
  auto rules = rules::RuleSet::load({dir.write("rules.cf", hostile_rules)});
  BOOST_REQUIRE(rules.has_value());
  RulesStage::Policy policy;
  policy.scan_budget = std::chrono::minutes(10);
  RulesStage stage(*rules, policy);
  std::stop_source stop;
  std::jthread timer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop.request_stop();
  });
  auto started = std::chrono::steady_clock::now();
  Verdict verdict = runJob(stage, hostileMessage(), stop.get_token());
  auto took = std::chrono::steady_clock::now() - started;
  BOOST_TEST(took < std::chrono::seconds(2) * test::sanitizer_pace, std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  // Stopped in the SLOW rule, or before it when parsing the message took longer than 50 ms.
  BOOST_TEST(detail(verdict, "scan_stopped") == "stopped");
  BOOST_TEST(std::stoi(detail(verdict, "rules_not_run")) >= 1);
}

BOOST_AUTO_TEST_CASE(under_tag_score_status_no_and_any_outside_flag_removed) {
  Verdict verdict = RulesStage::decide(scanOf(1.5, {"A_RULE"}), RulesStage::Policy{}, "hello");
  BOOST_TEST(kind(verdict) == static_cast<int>(Verdict::Kind::Continue));
  BOOST_REQUIRE(field(verdict, "X-Spam-Status") != nullptr);
  BOOST_TEST(field(verdict, "X-Spam-Status")->value == "No, score=1.5 required=5.0 tests=A_RULE");
  BOOST_TEST(field(verdict, "X-Spam-Score")->value == "1.5");
  BOOST_TEST(field(verdict, "X-Spam-Flag") == nullptr);
  // Every X-Spam-* field from outside, not only the three the stage writes (issue 12).
  for (const char* name : {"X-Spam-Score", "X-Spam-Status", "X-Spam-Flag", "X-Spam-Level", "X-Spam-Report",
                           "X-Spam-Checker-Version", "x-spam-anything"})
    BOOST_TEST(removes(verdict, name), name);
  for (const char* name : {"Subject", "X-Spam", "X-Spamd-Result"}) BOOST_TEST(!removes(verdict, name), name);
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
  // Every line of the field within 78 columns: "X-Spam-Status: " comes before the first.
  std::size_t start = 0;
  std::size_t lead = std::string("X-Spam-Status: ").size();
  while (start < value.size()) {
    std::size_t end = value.find("\r\n", start);
    std::size_t length = (end == std::string::npos ? value.size() : end) - start;
    BOOST_TEST(lead + length <= 78u, "line of " << lead + length << " columns");
    lead = 0;
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

BOOST_AUTO_TEST_CASE(a_spool_that_cannot_be_read_back_is_a_451_4_3_0) {
  test::TempDirectory dir("mailgate-rules-stage-test");
  auto rules = rules::RuleSet::load({dir.write("rules.cf", "body ANY /./\n")});
  BOOST_REQUIRE(rules.has_value());
  auto spool = std::make_shared<Spool>(dir.path() + "/spool", 16);
  std::filesystem::create_directory(dir.path() + "/spool");
  BOOST_REQUIRE(spool->append("Subject: s\r\n\r\n" + std::string(4096, 'x') + "\r\n").has_value());
  BOOST_REQUIRE(spool->onDisk());
  // Disk trouble: the file under the spool loses its content.
  int fd = spoolFileDescriptor(dir.path() + "/spool");
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(::ftruncate(fd, 0) == 0);

  RulesStage stage(*rules, RulesStage::Policy{});
  StageInput input;
  input.phase = Phase::EndOfData;
  input.message = spool;
  input.message_size = spool->size();
  Step step = stage.check(input);
  BOOST_REQUIRE(std::holds_alternative<Job>(step));
  Verdict verdict = std::get<Job>(step)(std::stop_token());
  BOOST_TEST(verdict.reply.code() == 451);
  BOOST_TEST(verdict.reply.enhanced() == "4.3.0");
  BOOST_TEST(verdict.reason.find("reading the message") != std::string::npos, verdict.reason);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
