#pragma once
// Helpers the rule engine's tests share: rule text written to a temporary folder and loaded the
// way the rules stage loads it, and short ways to read what a scan hit.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "rules/message_view.h"
#include "rules/rule_set.h"
#include "tests/unit/temp_directory.h"

namespace mailgate::rules::test {

// A folder of rule files that is removed with the object.
using RuleDir = mailgate::test::TempDirectory;

inline std::string joined(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += "\n  " + p.str();
  return out;
}

// Loads `text` as one rule file; the test stops when it does not load.
inline std::shared_ptr<const RuleSet> loadRules(const std::string& text, LintReport* report = nullptr) {
  RuleDir dir;
  std::string file = dir.write("rules.cf", text);
  auto loaded = RuleSet::load({file}, report);
  BOOST_REQUIRE_MESSAGE(loaded.has_value(), "rules do not load:" << (loaded ? std::string() : joined(loaded.error())));
  return *loaded;
}

// Lints `text` as one rule file named rules.cf.
inline LintReport lintRules(const std::string& text) {
  RuleDir dir;
  return RuleSet::lint({dir.write("rules.cf", text)});
}

inline const RuleHit* findHit(const ScanResult& result, const std::string& name) {
  auto it = std::find_if(result.hits.begin(), result.hits.end(), [&](const RuleHit& hit) { return hit.name == name; });
  return it == result.hits.end() ? nullptr : &*it;
}

// "A,B,C" in hit order (sorted by name), "" for no hit: one comparison says everything.
inline std::string hitNames(const ScanResult& result) {
  std::string out;
  for (const auto& hit : result.hits) out += (out.empty() ? "" : ",") + hit.name;
  return out;
}

inline std::string scanNames(const RuleSet& set, const std::string& message, Envelope envelope = {}) {
  return hitNames(set.scan(MessageView::parse(message, std::move(envelope))));
}

// Whether some problem's text contains `needle`.
inline bool mentions(const std::vector<Problem>& problems, const std::string& needle) {
  return std::any_of(problems.begin(), problems.end(), [&](const Problem& p) { return p.text.find(needle) != std::string::npos; });
}

inline const Problem* problemAbout(const std::vector<Problem>& problems, const std::string& needle) {
  auto it = std::find_if(problems.begin(), problems.end(), [&](const Problem& p) { return p.text.find(needle) != std::string::npos; });
  return it == problems.end() ? nullptr : &*it;
}

}  // namespace mailgate::rules::test
