#include "rules/rule_set.h"

#include <algorithm>
#include <optional>

#include "rules/compiled_rules.h"
#include "rules/rule_file_reader.h"
#include "rules/rule_set_builder.h"

namespace mailgate::rules {
namespace {

// What a header or mimeheader rule tests: the value, or for an absent field its
// [if-unset: ...] text, or "" (Perl's undef).
std::string_view subjectOf(const std::optional<std::string>& value, const Rule& rule) {
  return value ? std::string_view(*value) : rule.if_unset ? std::string_view(*rule.if_unset) : std::string_view();
}

// One message's scan: every enabled rule in order, each match within the scan's budget. A match
// that stops before it knows (Regex::Found::Cut) counts as no hit, negated rules included.
class Scanner {
 public:
  Scanner(const CompiledRules& rules, const MessageView& message, ScanLimits limits)
      : rules_(rules), message_(message), budget_(std::move(limits)), scratch_(&budget_), values_(rules.rules.size(), 0.0) {}

  ScanResult run();

 private:
  // Runs `hits` on each rule of one kind, in order; once the budget is out, the rest are not run.
  template <class Hits>
  void runEach(const std::vector<std::size_t>& kind, Hits hits) {
    for (std::size_t index : kind) {
      if (budget_.exhausted()) {
        ++not_run_;
        continue;
      }
      values_[index] = hits(rules_.rules[index]);
    }
  }
  unsigned hitsOn(const Rule& rule, std::string_view subject, unsigned room);
  double hitsOnEach(const Rule& rule, const std::vector<std::string>& pieces);
  double mimeHeaderHits(const Rule& rule);
  void cut(const Rule& rule);

  const CompiledRules& rules_;
  const MessageView& message_;
  ScanBudget budget_;
  RegexScratch scratch_;
  std::vector<double> values_;  // by rule index, as metas read them
  std::vector<CutRule> cut_;
  std::size_t not_run_ = 0;
};

void Scanner::cut(const Rule& rule) {
  const char* why = budget_.stopped() == ScanBudget::Stop::Spent       ? "budget"
                    : budget_.stopped() == ScanBudget::Stop::Cancelled ? "stopped"
                                                                       : "step_limit";
  // A rule runs whole before the next: its earlier cut, if any, is the last one.
  if (!cut_.empty() && cut_.back().name == rule.name) cut_.back().why = why;
  else cut_.push_back({rule.name, why});
}

// Hits of one regex rule on one string: 0 or 1, or up to `room` with tflags multiple.
unsigned Scanner::hitsOn(const Rule& rule, std::string_view subject, unsigned room) {
  if (budget_.exhausted()) {
    cut(rule);
    return 0;
  }
  if (rule.multiple && !rule.negated) {
    Regex::Count counted = rule.regex->count(subject, room, scratch_);
    if (counted.cut) cut(rule);
    return counted.found;
  }
  Regex::Found found = rule.regex->find(subject, scratch_);
  if (found == Regex::Found::Cut) {
    cut(rule);
    return 0;
  }
  return (found == Regex::Found::Yes) != rule.negated ? 1 : 0;
}

// Body, rawbody and uri rules test each piece; a rule stops at its first hit (or at maxhits).
double Scanner::hitsOnEach(const Rule& rule, const std::vector<std::string>& pieces) {
  unsigned total = 0;
  for (const std::string& piece : pieces) {
    total += hitsOn(rule, piece, rule.max_hits - total);
    if (total >= rule.max_hits || budget_.stopped() != ScanBudget::Stop::None) break;
  }
  return total;
}

// mimeheader: the last such field of each part (get_header in scalar context), first part that
// hits decides. A negated rule hits when no part matches (SpamAssassin 4.0's MIMEHeader.pm hits
// on every negated rule, a bug this does not copy) and every part was answered.
double Scanner::mimeHeaderHits(const Rule& rule) {
  for (const auto& part : message_.mimeParts()) {
    std::optional<std::string> value;
    if (const MessageHeader* field = lastField(part, rule.mime_header))
      value = rule.mime_raw ? field->raw : field->decoded + "\n";
    std::string_view subject = subjectOf(value, rule);
    if (rule.negated) {
      if (budget_.exhausted()) {
        cut(rule);
        return 0;
      }
      Regex::Found found = rule.regex->find(subject, scratch_);
      if (found == Regex::Found::Cut) cut(rule);
      if (found != Regex::Found::No) return 0;
      continue;
    }
    if (unsigned hits = hitsOn(rule, subject, rule.max_hits)) return hits;
    if (budget_.stopped() != ScanBudget::Stop::None) return 0;
  }
  return rule.negated ? 1 : 0;
}

ScanResult Scanner::run() {
  // Rules on the same header share one computed value.
  std::vector<std::optional<std::optional<std::string>>> header_values(rules_.queries.size());
  runEach(rules_.header, [&](const Rule& rule) -> double {
    auto& cached = header_values[rule.query];
    if (!cached) cached = rules_.queries[rule.query].value(message_);
    const std::optional<std::string>& value = *cached;
    if (rule.exists_test) return value ? 1 : 0;
    return hitsOn(rule, subjectOf(value, rule), rule.max_hits);
  });
  runEach(rules_.mime_header, [&](const Rule& rule) { return mimeHeaderHits(rule); });
  runEach(rules_.body, [&](const Rule& rule) { return hitsOnEach(rule, message_.body()); });
  runEach(rules_.rawbody, [&](const Rule& rule) { return hitsOnEach(rule, message_.rawbody()); });
  runEach(rules_.uri, [&](const Rule& rule) { return hitsOnEach(rule, message_.uris()); });
  runEach(rules_.full, [&](const Rule& rule) -> double { return hitsOn(rule, message_.full(), rule.max_hits); });
  // A meta's value is its expression's (a count, for arithmetic metas), at least 1 when true.
  for (std::size_t index : rules_.meta) {
    double result = rules_.rules[index].meta->evaluate(values_);
    if (result != 0) values_[index] = result > 0 ? result : 1;
  }

  ScanResult result;
  for (std::size_t index = 0; index < rules_.rules.size(); ++index) {
    const Rule& rule = rules_.rules[index];
    if (values_[index] <= 0 || !rule.enabled || rule.name.starts_with("__")) continue;
    // Each match of a tflags multiple rule scores (SpamAssassin calls got_hit per match).
    double added = rule.meta ? rule.score : rule.score * values_[index];
    result.hits.push_back({rule.name, added, rule.description});
    result.score += added;
  }
  std::sort(result.hits.begin(), result.hits.end(), [](const RuleHit& a, const RuleHit& b) { return a.name < b.name; });
  result.cut_short = std::move(cut_);
  result.stopped = budget_.stopped();
  result.rules_not_run = not_run_;
  return result;
}

}  // namespace

std::string Problem::str() const { return file + ":" + std::to_string(line) + ": " + text; }

RuleSet::RuleSet(std::unique_ptr<const CompiledRules> compiled) : compiled_(std::move(compiled)) {}
RuleSet::~RuleSet() = default;

size_t RuleSet::size() const { return compiled_->rules.size(); }

LintReport RuleSet::lint(const std::vector<std::string>& paths) {
  LintReport report;
  (void)load(paths, &report);  // the report is whole whether or not the set loads
  return report;
}

std::expected<std::shared_ptr<const RuleSet>, std::vector<Problem>> RuleSet::load(const std::vector<std::string>& paths,
                                                                                 LintReport* report) {
  LintReport local;
  LintReport& out = report != nullptr ? *report : local;
  out = LintReport{};
  RuleFileReader reader(out);
  std::vector<Statement> statements = reader.read(paths);
  std::unique_ptr<CompiledRules> compiled = RuleSetBuilder(out).build(statements);
  if (!out.errors.empty()) return std::unexpected(out.errors);
  return std::make_shared<const RuleSet>(std::move(compiled));
}

ScanResult RuleSet::scan(const MessageView& message, ScanLimits limits) const {
  return Scanner(*compiled_, message, std::move(limits)).run();
}

}  // namespace mailgate::rules
