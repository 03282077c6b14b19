// The shipped rule set (rules/sets/): it loads cleanly, every rule is described, and every rule
// has a message that hits it and a close one that must not (tests/data/rules/sets/RULE.hit.eml,
// RULE.miss.eml). The same messages give the same hits under SpamAssassin 4:
//   spamassassin -t -L -p /dev/null -C rules/sets --siteconfigpath DIR < message
// with DIR holding one .pre file that loads Mail::SpamAssassin::Plugin::Check.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rule_test_support.h"
#include "rules/message_view.h"
#include "rules/rule_set.h"

namespace mailgate::rules {
namespace {

namespace fs = std::filesystem;
using test::findHit;
using test::hitNames;
using test::joined;

const fs::path kRulesDir = fs::path(MAILGATE_TEST_DATA "/../rules/sets");
const fs::path kMessagesDir = fs::path(MAILGATE_TEST_DATA "/data/rules/sets");

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// What the .cf files declare, read independently of the engine: the rule names (in file order,
// sub-rules "__…" included) and each rule's describe text.
struct Declared {
  std::vector<std::string> rules;
  std::map<std::string, std::string> descriptions;
  std::set<std::string> scored;
};

Declared readDeclared() {
  static const std::set<std::string> kinds = {"header", "body", "rawbody", "uri", "full", "meta"};
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kRulesDir))
    if (entry.path().extension() == ".cf") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  Declared declared;
  for (const auto& file : files) {
    std::istringstream in(readFile(file));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string keyword, name;
      words >> keyword >> name;
      if (kinds.contains(keyword)) {
        declared.rules.push_back(name);
      } else if (keyword == "describe") {
        std::string text;
        std::getline(words >> std::ws, text);
        declared.descriptions[name] = text;
      } else if (keyword == "score") {
        declared.scored.insert(name);
      }
    }
  }
  return declared;
}

bool isSubRule(const std::string& name) { return name.starts_with("__"); }

std::shared_ptr<const RuleSet> loadShipped() {
  LintReport report;
  auto loaded = RuleSet::load({kRulesDir.string()}, &report);
  BOOST_REQUIRE_MESSAGE(loaded.has_value(), "rules/sets does not load:" << (loaded ? std::string() : joined(loaded.error())));
  return *loaded;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shipped_rule_set)

BOOST_AUTO_TEST_CASE(loads_with_no_errors_no_skipped_lines_and_nothing_that_never_matches) {
  const Declared declared = readDeclared();
  BOOST_REQUIRE(!declared.rules.empty());

  LintReport report;
  auto loaded = RuleSet::load({kRulesDir.string()}, &report);
  BOOST_REQUIRE_MESSAGE(loaded.has_value(), "rules/sets does not load:" << (loaded ? std::string() : joined(loaded.error())));
  BOOST_TEST(report.errors.empty(), "errors:" << joined(report.errors));
  BOOST_TEST(report.skipped.empty(), "skipped lines (unsupported syntax):" << joined(report.skipped));
  BOOST_TEST(report.never_match.empty(), "rules that can never match:" << joined(report.never_match));
  BOOST_TEST(report.rules == declared.rules.size());
  BOOST_TEST((*loaded)->size() == declared.rules.size());

  // The linter says the same as the loader.
  LintReport lint = RuleSet::lint({kRulesDir.string()});
  BOOST_TEST(lint.errors.empty(), "errors:" << joined(lint.errors));
  BOOST_TEST(lint.skipped.empty(), "skipped:" << joined(lint.skipped));
  BOOST_TEST(lint.never_match.empty(), "never match:" << joined(lint.never_match));
  BOOST_TEST(lint.rules == declared.rules.size());
}

BOOST_AUTO_TEST_CASE(every_rule_has_a_description_a_score_and_a_hit_and_miss_message) {
  const Declared declared = readDeclared();
  std::set<std::string> listed;
  for (const auto& name : declared.rules) {
    if (isSubRule(name)) continue;
    listed.insert(name);
    BOOST_TEST_CONTEXT("rule " << name) {
      BOOST_TEST(name.starts_with("MG_"), "shipped rules are named MG_…");
      auto description = declared.descriptions.find(name);
      BOOST_TEST((description != declared.descriptions.end() && !description->second.empty()),
                 "no describe line");
      BOOST_TEST(declared.scored.contains(name), "no score line");
      BOOST_TEST(fs::is_regular_file(kMessagesDir / (name + ".hit.eml")), "no " << name << ".hit.eml");
      BOOST_TEST(fs::is_regular_file(kMessagesDir / (name + ".miss.eml")), "no " << name << ".miss.eml");
    }
  }
  BOOST_TEST(listed.size() >= 40u);
  // No message is left over from a rule that was renamed or removed.
  for (const auto& entry : fs::directory_iterator(kMessagesDir)) {
    const std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".eml") continue;
    const std::string rule = file.substr(0, file.find('.'));
    BOOST_TEST(listed.contains(rule), file << " belongs to no shipped rule");
  }
}

BOOST_AUTO_TEST_CASE(each_rule_hits_its_hit_message_and_not_its_miss_message) {
  const Declared declared = readDeclared();
  const auto set = loadShipped();
  for (const auto& name : declared.rules) {
    if (isSubRule(name)) continue;
    const fs::path hit_file = kMessagesDir / (name + ".hit.eml");
    const fs::path miss_file = kMessagesDir / (name + ".miss.eml");
    if (!fs::exists(hit_file) || !fs::exists(miss_file)) continue;  // reported by the test above
    BOOST_TEST_CONTEXT("rule " << name) {
      const ScanResult hit = set->scan(MessageView::parse(readFile(hit_file)));
      const RuleHit* found = findHit(hit, name);
      BOOST_TEST(found != nullptr, name << ".hit.eml does not hit it; hits: " << hitNames(hit));
      if (found != nullptr) {
        BOOST_TEST(found->description == declared.descriptions.at(name));
        BOOST_TEST(found->score != 0.0);
      }
      const ScanResult miss = set->scan(MessageView::parse(readFile(miss_file)));
      BOOST_TEST(findHit(miss, name) == nullptr, name << ".miss.eml hits it; hits: " << hitNames(miss));
    }
  }
}

BOOST_AUTO_TEST_CASE(hits_are_sorted_and_sub_rules_are_never_listed) {
  const auto set = loadShipped();
  const ScanResult result =
      set->scan(MessageView::parse(readFile(kMessagesDir / "MG_META_RATWARE.hit.eml")));
  BOOST_TEST(std::is_sorted(result.hits.begin(), result.hits.end(),
                            [](const RuleHit& a, const RuleHit& b) { return a.name < b.name; }));
  for (const auto& hit : result.hits) BOOST_TEST(!isSubRule(hit.name), hit.name);
  double sum = 0;
  for (const auto& hit : result.hits) sum += hit.score;
  BOOST_TEST(result.score == sum, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate::rules
