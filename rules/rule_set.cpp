#include "rules/rule_set.h"

#include <algorithm>
#include <optional>

#include "rules/compiled_rules.h"
#include "rules/rule_file_reader.h"
#include "rules/rule_set_builder.h"

namespace mailgate::rules {
namespace {

// Hits of one regex rule on one string: 0 or 1, or up to max_hits with tflags multiple.
unsigned hitsOn(const Rule& rule, std::string_view subject, unsigned room, RegexScratch& scratch) {
  if (rule.negated) return rule.regex->matches(subject, scratch) ? 0 : 1;
  if (rule.multiple) return rule.regex->count(subject, room, scratch);
  return rule.regex->matches(subject, scratch) ? 1 : 0;
}

// What a header or mimeheader rule tests: the value, or for an absent field its
// [if-unset: ...] text, or "" (Perl's undef).
std::string_view subjectOf(const std::optional<std::string>& value, const Rule& rule) {
  return value ? std::string_view(*value) : rule.if_unset ? std::string_view(*rule.if_unset) : std::string_view();
}

// Body, rawbody and uri rules test each piece; a rule stops at its first hit (or at maxhits).
double hitsOnEach(const Rule& rule, const std::vector<std::string>& pieces, RegexScratch& scratch) {
  unsigned total = 0;
  for (const std::string& piece : pieces) {
    total += hitsOn(rule, piece, rule.max_hits - total, scratch);
    if (total >= rule.max_hits) break;
  }
  return total;
}

// mimeheader: the last such field of each part (get_header in scalar context), first part that
// hits decides. A negated rule hits when no part matches (SpamAssassin 4.0's MIMEHeader.pm hits
// on every negated rule, a bug this does not copy).
double mimeHeaderHits(const Rule& rule, const MessageView& message, RegexScratch& scratch) {
  for (const auto& part : message.mimeParts()) {
    std::optional<std::string> value;
    if (const MessageHeader* field = lastField(part, rule.mime_header))
      value = rule.mime_raw ? field->raw : field->decoded + "\n";
    std::string_view subject = subjectOf(value, rule);
    if (rule.negated) {
      if (rule.regex->matches(subject, scratch)) return 0;
      continue;
    }
    if (unsigned hits = hitsOn(rule, subject, rule.max_hits, scratch)) return hits;
  }
  return rule.negated ? 1 : 0;
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

ScanResult RuleSet::scan(const MessageView& message) const {
  const CompiledRules& rules = *compiled_;
  RegexScratch scratch;
  std::vector<double> values(rules.rules.size(), 0.0);

  // Rules on the same header share one computed value.
  std::vector<std::optional<std::optional<std::string>>> header_values(rules.queries.size());
  for (std::size_t index : rules.header) {
    const Rule& rule = rules.rules[index];
    auto& cached = header_values[rule.query];
    if (!cached) cached = rules.queries[rule.query].value(message);
    const std::optional<std::string>& value = *cached;
    if (rule.exists_test) {
      values[index] = value ? 1 : 0;
      continue;
    }
    values[index] = hitsOn(rule, subjectOf(value, rule), rule.max_hits, scratch);
  }
  for (std::size_t index : rules.mime_header) values[index] = mimeHeaderHits(rules.rules[index], message, scratch);
  for (std::size_t index : rules.body) values[index] = hitsOnEach(rules.rules[index], message.body(), scratch);
  for (std::size_t index : rules.rawbody) values[index] = hitsOnEach(rules.rules[index], message.rawbody(), scratch);
  for (std::size_t index : rules.uri) values[index] = hitsOnEach(rules.rules[index], message.uris(), scratch);
  for (std::size_t index : rules.full) {
    const Rule& rule = rules.rules[index];
    values[index] = hitsOn(rule, message.full(), rule.max_hits, scratch);
  }
  // A meta's value is its expression's (a count, for arithmetic metas), at least 1 when true.
  for (std::size_t index : rules.meta) {
    double result = rules.rules[index].meta->evaluate(values);
    if (result != 0) values[index] = result > 0 ? result : 1;
  }

  ScanResult result;
  for (std::size_t index = 0; index < rules.rules.size(); ++index) {
    const Rule& rule = rules.rules[index];
    if (values[index] <= 0 || !rule.enabled || rule.name.starts_with("__")) continue;
    // Each match of a tflags multiple rule scores (SpamAssassin calls got_hit per match).
    double added = rule.meta ? rule.score : rule.score * values[index];
    result.hits.push_back({rule.name, added, rule.description});
    result.score += added;
  }
  std::sort(result.hits.begin(), result.hits.end(), [](const RuleHit& a, const RuleHit& b) { return a.name < b.name; });
  return result;
}

}  // namespace mailgate::rules
