// SpamAssassin's own rules, as Debian's `spamassassin` package installs them: the folder loads
// (what mailgate cannot run is skipped, never fatal) with no errors, and its rules work on mail.
// CI installs the package; without it these tests fail and say so.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "rule_test_support.h"

namespace mailgate::rules {
namespace {

namespace fs = std::filesystem;

const fs::path kDebianRules = "/usr/share/spamassassin";
void requireRulesFolder(const fs::path& dir) {
  BOOST_REQUIRE_MESSAGE(fs::is_directory(dir), dir.string() << " is missing: install Debian's spamassassin package "
                                                              "(apt-get install spamassassin) to run this test");
}

// Loads a SpamAssassin rules folder and checks what every such folder must give.
std::shared_ptr<const RuleSet> loadRulesFolder(const fs::path& dir, LintReport& report) {
  auto loaded = RuleSet::load({dir.string()}, &report);
  BOOST_REQUIRE_MESSAGE(loaded.has_value(), dir.string() << " does not load:" << test::joined(report.errors));
  BOOST_TEST(report.errors.empty(), test::joined(report.errors));
  // Thousands of rules in the stock set. What needs Perl is skipped: the blocks of plugins that
  // are not built in (where the eval: tests are), plugin settings, relay pseudo-headers.
  BOOST_TEST(report.rules > 500u);
  BOOST_TEST((*loaded)->size() == report.rules);
  BOOST_TEST(!report.skipped.empty());
  BOOST_TEST(test::mentions(report.skipped, "ifplugin Mail::SpamAssassin::Plugin::"));
  BOOST_TEST(test::mentions(report.skipped, "setting not supported"));
  return *loaded;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spamassassin_rules)

BOOST_AUTO_TEST_CASE(debian_rules_folder_loads_without_errors) {
  requireRulesFolder(kDebianRules);
  LintReport report;
  loadRulesFolder(kDebianRules, report);
  // Skipped lines point at where they are.
  for (const Problem& problem : report.skipped) {
    BOOST_TEST_CONTEXT(problem.str()) {
      BOOST_TEST(problem.file.starts_with(kDebianRules.string()));
      BOOST_TEST(problem.line > 0);
    }
  }
  // lint says the same as load.
  LintReport lint = RuleSet::lint({kDebianRules.string()});
  BOOST_TEST(lint.errors.empty(), test::joined(lint.errors));
  BOOST_TEST(lint.rules == report.rules);
  BOOST_TEST(lint.skipped.size() == report.skipped.size());
}

BOOST_AUTO_TEST_CASE(debian_rules_score_gtube) {
  requireRulesFolder(kDebianRules);
  LintReport report;
  auto set = loadRulesFolder(kDebianRules, report);
  const std::string gtube =
      "From: sender@example.org\n"
      "To: recipient@example.net\n"
      "Subject: Test spam mail (GTUBE)\n"
      "Message-ID: <GTUBE1.1010101@example.net>\n"
      "Date: Wed, 23 Jul 2003 23:30:00 +0200\n"
      "MIME-Version: 1.0\n"
      "Content-Type: text/plain; charset=us-ascii\n"
      "\n"
      "This is the GTUBE, the\n"
      "\tGeneric\n"
      "\tTest for\n"
      "\tUnsolicited\n"
      "\tBulk\n"
      "\tEmail\n"
      "\n"
      "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n";
  ScanResult result = set->scan(MessageView::parse(gtube));
  const RuleHit* hit = test::findHit(result, "GTUBE");
  BOOST_REQUIRE_MESSAGE(hit != nullptr, "hits: " << test::hitNames(result));
  BOOST_TEST(hit->score == 1000.0);
  BOOST_TEST(hit->description == "Generic Test for Unsolicited Bulk Email");
  // Other rules add little (NO_RECEIVED, -0.001, is what SpamAssassin also gives this message).
  BOOST_TEST(result.score > 999.0);

  // An ordinary message does not come near the spam threshold.
  const std::string ham =
      "From: Alice <alice@example.org>\n"
      "To: Bob <bob@example.net>\n"
      "Subject: Lunch on Thursday\n"
      "Message-ID: <20250301120000.1234@example.org>\n"
      "Date: Sat, 1 Mar 2025 12:00:00 +0100\n"
      "MIME-Version: 1.0\n"
      "Content-Type: text/plain; charset=utf-8\n"
      "\n"
      "Hi Bob,\n\nare we still on for lunch on Thursday? The usual place at noon.\n\nAlice\n";
  ScanResult ham_result = set->scan(MessageView::parse(ham));
  BOOST_TEST(test::findHit(ham_result, "GTUBE") == nullptr);
  BOOST_TEST(ham_result.score < 5.0, "hits: " << test::hitNames(ham_result));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate::rules
