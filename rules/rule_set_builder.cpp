#include "rules/rule_set_builder.h"

#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "rules/replace_tags.h"
#include "gateway/util/ascii.h"

namespace mailgate::rules {
namespace {

// SpamAssassin's RULENAME_RE, and its hard limit on a name's length.
constexpr std::size_t max_rule_name_length = 100;

bool isRuleName(std::string_view name) {
  if (name.empty() || name.size() > max_rule_name_length) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

std::pair<std::string, std::string> splitName(std::string_view value) {
  auto [name, rest] = splitFirstWord(value);
  return {std::string(name), std::string(rest)};
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    while (at < text.size() && std::isspace(static_cast<unsigned char>(text[at]))) ++at;
    std::size_t end = at;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    if (end > at) out.emplace_back(text.substr(at, end - at));
    at = end;
  }
  return out;
}

// Parser.pm set_numeric_value: [+-]?\d+(\.\d*)?
std::optional<double> number(std::string_view text) {
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  std::size_t digits = i;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == digits) return std::nullopt;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  }
  if (i != text.size()) return std::nullopt;
  return std::strtod(std::string(text).c_str(), nullptr);
}

// Simple glob of rules_matching(): '*' any run, '?' one character.
bool globMatches(std::string_view glob, std::string_view name) {
  if (glob.empty()) return name.empty();
  if (glob[0] == '*') {
    for (std::size_t skip = 0; skip <= name.size(); ++skip)
      if (globMatches(glob.substr(1), name.substr(skip))) return true;
    return false;
  }
  if (name.empty()) return false;
  return (glob[0] == '?' || glob[0] == name[0]) && globMatches(glob.substr(1), name.substr(1));
}

struct Definition {
  std::string name;
  RuleKind kind;
  std::string file;
  int line;
  std::string text;    // the regex as written, or the meta expression
  std::string header;  // Header, MimeHeader: the field (with modifiers)
  bool negated = false;
  bool exists_test = false;
  std::optional<std::string> if_unset;
};

struct Setting {
  std::string value;
  std::string file;
  int line;
};

class Builder {
 public:
  explicit Builder(LintReport& report) : report_(report) {}

  std::unique_ptr<CompiledRules> run(const std::vector<Statement>& statements) {
    for (const Statement& statement : statements) handle(statement);
    auto compiled = std::make_unique<CompiledRules>();
    compile(*compiled);
    applySettings(*compiled);
    bindMetas(*compiled);
    orderAndGroup(*compiled);
    findNeverMatching(*compiled);
    report_.rules = compiled->rules.size();
    return compiled;
  }

 private:
  void error(const Statement& s, std::string text) { report_.errors.push_back({s.file, s.line, std::move(text)}); }
  void skip(const Statement& s, std::string text) { report_.skipped.push_back({s.file, s.line, std::move(text)}); }

  void define(Definition definition) {
    skipped_names_.erase(definition.name);
    auto found = index_.find(definition.name);
    if (found != index_.end()) {
      definitions_[found->second] = std::move(definition);
    } else {
      index_[definition.name] = definitions_.size();
      definitions_.push_back(std::move(definition));
    }
  }

  void undefine(const std::string& name) {
    auto found = index_.find(name);
    if (found == index_.end()) return;
    // Keep the slot (indices stay valid); an empty name marks it gone.
    definitions_[found->second].name.clear();
    index_.erase(found);
  }

  void handle(const Statement& s) {
    const std::string& keyword = s.keyword;
    if (keyword == "header" || keyword == "body" || keyword == "rawbody" || keyword == "uri" || keyword == "full" ||
        keyword == "mimeheader" || keyword == "meta") {
      defineRule(s);
    } else if (keyword == "score" || keyword == "describe" || keyword == "tflags") {
      auto [name, value] = splitName(s.value);
      if (!isRuleName(name)) return error(s, keyword + ": invalid rule name '" + name + "'");
      if (value.empty()) return error(s, keyword + " " + name + ": missing value");
      auto& table = keyword == "score" ? scores_ : keyword == "describe" ? descriptions_ : tflags_;
      table[name] = {value, s.file, s.line};
    } else if (ReplaceTags::isSetting(keyword)) {
      if (auto set = replace_tags_.set(keyword, s.value); !set) error(s, set.error());
    } else if (keyword == "priority") {
      // Only orders rules for short-circuiting, which mailgate does not do: every rule runs.
    } else if (keyword == "loadplugin") {
      auto [plugin, file] = splitName(s.value);
      if (!RuleFileReader::hasPlugin(plugin)) skip(s, "loadplugin " + plugin + ": Perl plugins cannot be loaded");
    } else {
      skip(s, keyword + ": setting not supported");
    }
  }

  void defineRule(const Statement& s) {
    auto [name, rest] = splitName(s.value);
    if (!isRuleName(name)) return error(s, s.keyword + ": invalid rule name '" + name + "'");
    if (rest.empty()) return error(s, s.keyword + " " + name + ": missing test");
    // eval: (and header rbleval:) tests call Perl code in SpamAssassin's plugins (DNS lists,
    // Bayes, HTML checks...). Conf.pm: /^(?:rbl)?eval:(.*)$/.
    std::size_t word_end = 0;
    while (word_end < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[word_end])) || rest[word_end] == '_')) ++word_end;
    std::string_view kind = std::string_view(rest).substr(0, word_end);
    if (s.keyword != "meta" && (kind == "eval" || kind == "rbleval") && rest.substr(word_end).starts_with(':')) {
      undefine(name);
      skipped_names_.insert(name);
      std::string call = rest.substr(word_end + 1, rest.find('(') - word_end - 1);
      return skip(s, s.keyword + " " + name + ": " + std::string(kind) + ": tests are not supported (" + call + ")");
    }
    Definition definition{name, RuleKind::Body, s.file, s.line, rest, {}, false, false, std::nullopt};
    if (s.keyword == "meta") {
      definition.kind = RuleKind::Meta;
    } else if (s.keyword == "header" || s.keyword == "mimeheader") {
      definition.kind = s.keyword == "header" ? RuleKind::Header : RuleKind::MimeHeader;
      if (!parseHeaderTest(s, definition)) return;
    } else {
      definition.kind = s.keyword == "body"      ? RuleKind::Body
                        : s.keyword == "rawbody" ? RuleKind::Rawbody
                        : s.keyword == "uri"     ? RuleKind::Uri
                                                 : RuleKind::Full;
    }
    define(std::move(definition));
  }

  // "Field[:mods] =~ /re/ [if-unset: X]" or "exists:Field" (Parser.pm add_test, MIMEHeader.pm).
  bool parseHeaderTest(const Statement& s, Definition& definition) {
    std::string text = definition.text;
    if (text.starts_with("exists:")) {
      std::string field = text.substr(7);
      if (field.ends_with(':')) field.pop_back();
      bool valid = !field.empty() && definition.kind == RuleKind::Header;
      for (char c : field)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) valid = false;
      if (!valid) {
        error(s, s.keyword + " " + definition.name + ": invalid header name in '" + text + "'");
        return false;
      }
      definition.header = field;
      definition.exists_test = true;
      definition.text.clear();
      return true;
    }
    std::size_t i = 0;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_' || text[i] == '.' ||
                               text[i] == '-' || text[i] == ':'))
      ++i;
    std::string field = text.substr(0, i);
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::string op = text.substr(i, 2);
    if (field.empty() || (op != "=~" && op != "!~")) {
      error(s, s.keyword + " " + definition.name + ": invalid test '" + text + "' (expected: Header =~ /regex/)");
      return false;
    }
    i += 2;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::string pattern = text.substr(i);
    // [if-unset: TEXT] at the end: the value tested when the header is absent.
    if (pattern.ends_with(']')) {
      std::size_t at = pattern.rfind("[if-unset:");
      if (at != std::string::npos && at > 0 && std::isspace(static_cast<unsigned char>(pattern[at - 1]))) {
        std::string unset = pattern.substr(at + 10, pattern.size() - at - 11);
        std::size_t begin = unset.find_first_not_of(" \t");
        definition.if_unset = begin == std::string::npos ? std::string() : unset.substr(begin);
        pattern = pattern.substr(0, pattern.find_last_not_of(" \t", at - 1) + 1);
      }
    }
    if (pattern.empty()) {
      error(s, s.keyword + " " + definition.name + ": missing regex");
      return false;
    }
    while (field.ends_with(':')) field.pop_back();
    if (definition.kind == RuleKind::MimeHeader) {
      std::size_t colon = field.find(':');
      if (colon != std::string::npos && field.substr(colon) != ":raw") {
        error(s, "mimeheader " + definition.name + ": only the :raw modifier is allowed");
        return false;
      }
    } else {
      bool unsupported = false;
      auto query = HeaderQuery::parse(field, unsupported);
      if (!query) {
        if (unsupported) {
          undefine(definition.name);
          skipped_names_.insert(definition.name);
          skip(s, "header " + definition.name + ": " + query.error());
        } else {
          error(s, "header " + definition.name + ": " + query.error());
        }
        return false;
      }
    }
    definition.header = field;
    definition.negated = op == "!~";
    definition.text = pattern;
    return true;
  }

  std::optional<Regex> compileRegex(const Definition& definition) {
    Statement where{"", "", definition.file, definition.line};
    auto split = splitRegexText(definition.text);
    if (!split) {
      error(where, definition.name + ": invalid regexp '" + definition.text + "': " + split.error());
      return std::nullopt;
    }
    std::string pattern = split->pattern;
    std::string flags = split->flags;
    if (replace_tags_.rules().contains(definition.name) && definition.kind != RuleKind::MimeHeader) {
      // The plain regex flags go inline (PCRE2 has no (?a) etc.: those are no-ops anyway).
      std::string inline_flags;
      for (char flag : flags)
        if (std::string_view("imsxn").find(flag) != std::string_view::npos) inline_flags += flag;
      std::string expanded = replace_tags_.expand(pattern, inline_flags);
      if (expanded != pattern) {
        pattern = std::move(expanded);
        flags.clear();
      }
    }
    auto regex = Regex::compile(pattern, flags);
    if (!regex && regex.error() == Regex::too_large) {
      // Perl takes it; PCRE2 (as Debian builds it, LINK_SIZE 2) caps a compiled pattern at 64K
      // code units, which some ReplaceTags expansions in SpamAssassin's 72_active.cf exceed. A
      // limit of mailgate, not a mistake in the rule: skipped, so that the set still loads.
      skipped_names_.insert(definition.name);
      skip(where, definition.name + ": regexp too large for PCRE2 once expanded (" + std::to_string(pattern.size()) +
                      " bytes), rule skipped");
      return std::nullopt;
    }
    if (!regex) {
      error(where, definition.name + ": invalid regexp '" + definition.text + "': " + regex.error());
      return std::nullopt;
    }
    return std::move(*regex);
  }

  void compile(CompiledRules& compiled) {
    std::map<std::string, std::size_t> query_index;
    for (const Definition& definition : definitions_) {
      if (definition.name.empty()) continue;
      Rule rule;
      rule.name = definition.name;
      rule.kind = definition.kind;
      rule.file = definition.file;
      rule.line = definition.line;
      rule.negated = definition.negated;
      rule.exists_test = definition.exists_test;
      rule.if_unset = definition.if_unset;
      if (definition.kind == RuleKind::Meta) {
        auto meta = MetaExpression::parse(definition.text);
        if (!meta) {
          error({"", "", definition.file, definition.line}, "meta " + definition.name + ": invalid expression '" +
                                                                definition.text + "': " + meta.error());
          continue;
        }
        for (const auto& call : meta->calls()) {
          if (call.function != "rules_matching") {
            error({"", "", definition.file, definition.line}, "meta " + definition.name + ": " + call.function + "() is not allowed in a meta");
          }
        }
        for (const std::string& name : meta->names()) {
          if (!isRuleName(name)) {
            error({"", "", definition.file, definition.line}, "meta " + definition.name + ": invalid token '" + name + "'");
          }
        }
        rule.meta = std::move(*meta);
      } else if (!definition.exists_test) {
        rule.regex = compileRegex(definition);
        if (!rule.regex) continue;
      }
      if (definition.kind == RuleKind::Header) {
        auto [found, inserted] = query_index.emplace(definition.header, compiled.queries.size());
        if (inserted) {
          bool unsupported = false;
          compiled.queries.push_back(*HeaderQuery::parse(definition.header, unsupported));
        }
        rule.query = found->second;
      } else if (definition.kind == RuleKind::MimeHeader) {
        std::size_t colon = definition.header.find(':');
        rule.mime_header = definition.header.substr(0, colon);
        rule.mime_raw = colon != std::string::npos;
      }
      slot_[rule.name] = compiled.rules.size();
      compiled.rules.push_back(std::move(rule));
    }
  }

  void applySettings(CompiledRules& compiled) {
    for (Rule& rule : compiled.rules) {
      bool nice = false;
      std::optional<unsigned> max_hits;
      if (auto found = tflags_.find(rule.name); found != tflags_.end()) {
        for (const std::string& flag : words(found->second.value)) {
          if (flag == "nice") {
            nice = true;
          } else if (flag == "multiple") {
            rule.multiple = true;
          } else if (flag.starts_with("maxhits=")) {
            auto value = number(flag.substr(8));
            if (!value || *value < 1) error({"", "", found->second.file, found->second.line}, "tflags " + rule.name + ": invalid " + flag);
            else max_hits = static_cast<unsigned>(*value);
          }
          // Other flags (net, learn, publish, autolearn_*, noautolearn, userconf...) describe
          // SpamAssassin's own machinery and change nothing here.
        }
      }
      // tflags multiple counts every match (up to maxhits); without it a rule hits once.
      rule.max_hits = rule.multiple ? max_hits.value_or(default_max_hits) : 1;
      if (auto found = scores_.find(rule.name); found != scores_.end()) {
        std::vector<std::string> values = words(found->second.value);
        std::optional<double> first = values.empty() ? std::nullopt : number(values[0]);
        bool valid = first && (values.size() == 1 || values.size() == 4);
        for (const std::string& value : values) valid = valid && number(value).has_value();
        if (!valid) {
          error({"", "", found->second.file, found->second.line},
                "score " + rule.name + ": expected one score or four (score sets 0-3), got '" + found->second.value + "'");
        } else {
          rule.score = *first;  // score set 0: no Bayes, no network tests
        }
      } else {
        // Parser.pm fix_tests: T_ (testing) rules 0.01, others 1.0; negative for tflags nice.
        rule.score = rule.name.starts_with("T_") ? 0.01 : 1.0;
        if (nice) rule.score = -rule.score;
      }
      rule.enabled = rule.score != 0;
      if (auto found = descriptions_.find(rule.name); found != descriptions_.end()) rule.description = found->second.value;
    }
  }

  void bindMetas(CompiledRules& compiled) {
    std::vector<std::string> names;
    for (const Rule& rule : compiled.rules) names.push_back(rule.name);
    for (Rule& rule : compiled.rules) {
      if (!rule.meta) continue;
      std::set<std::string> reported;
      auto slot_of = [&](std::string_view name) -> std::optional<std::size_t> {
        auto found = slot_.find(std::string(name));
        if (found != slot_.end()) return found->second;
        std::string missing(name);
        if (!skipped_names_.contains(missing) && reported.insert(missing).second) {
          report_.skipped.push_back({rule.file, rule.line, "meta " + rule.name + ": unknown rule " + missing + " reads as 0"});
        }
        return std::nullopt;
      };
      auto expand = [&](std::string_view glob) {
        std::vector<std::size_t> slots;
        for (std::size_t i = 0; i < names.size(); ++i)
          if (names[i] != rule.name && globMatches(glob, names[i])) slots.push_back(i);
        return slots;
      };
      rule.meta->bind(slot_of, expand);
    }
  }

  void orderAndGroup(CompiledRules& compiled) {
    // Metas in dependency order (Kahn): a meta runs after every meta it reads.
    std::vector<std::size_t> metas;
    std::map<std::size_t, std::vector<std::size_t>> readers;
    std::map<std::size_t, int> waiting;
    for (std::size_t i = 0; i < compiled.rules.size(); ++i) {
      const Rule& rule = compiled.rules[i];
      if (!rule.meta) continue;
      metas.push_back(i);
      waiting[i] = 0;
      for (std::size_t slot : rule.meta->slots()) {
        if (!compiled.rules[slot].meta) continue;
        readers[slot].push_back(i);
        ++waiting[i];
      }
    }
    std::vector<std::size_t> ready, order;
    for (std::size_t i : metas)
      if (waiting[i] == 0) ready.push_back(i);
    while (!ready.empty()) {
      std::size_t next = ready.back();
      ready.pop_back();
      order.push_back(next);
      for (std::size_t reader : readers[next])
        if (--waiting[reader] == 0) ready.push_back(reader);
    }
    for (std::size_t i : metas) {
      if (waiting[i] > 0) {
        const Rule& rule = compiled.rules[i];
        report_.errors.push_back({rule.file, rule.line, "meta " + rule.name + ": circular dependency between metas"});
      }
    }
    for (std::size_t i = 0; i < compiled.rules.size(); ++i) {
      const Rule& rule = compiled.rules[i];
      if (!rule.enabled || rule.meta) continue;
      switch (rule.kind) {
        case RuleKind::Header: compiled.header.push_back(i); break;
        case RuleKind::MimeHeader: compiled.mime_header.push_back(i); break;
        case RuleKind::Body: compiled.body.push_back(i); break;
        case RuleKind::Rawbody: compiled.rawbody.push_back(i); break;
        case RuleKind::Uri: compiled.uri.push_back(i); break;
        case RuleKind::Full: compiled.full.push_back(i); break;
        case RuleKind::Meta: break;
      }
    }
    for (std::size_t i : order)
      if (compiled.rules[i].enabled) compiled.meta.push_back(i);
  }

  void findNeverMatching(CompiledRules& compiled) {
    std::vector<std::optional<double>> known(compiled.rules.size());
    std::set<std::size_t> read_by_meta;
    for (std::size_t i : compiled.meta)
      for (std::size_t slot : compiled.rules[i].meta->slots()) read_by_meta.insert(slot);
    auto never = [&](const Rule& rule, std::string why) { report_.never_match.push_back({rule.file, rule.line, rule.name + ": " + why}); };
    for (std::size_t i = 0; i < compiled.rules.size(); ++i) {
      const Rule& rule = compiled.rules[i];
      if (!rule.enabled) {
        known[i] = 0.0;
        auto score = scores_.find(rule.name);
        if (score != scores_.end()) report_.never_match.push_back({score->second.file, score->second.line, rule.name + ": disabled by score 0"});
        else never(rule, "disabled (score 0)");
        continue;
      }
      if (rule.regex && rule.regex->neverMatches() && !rule.negated) {
        known[i] = 0.0;
        never(rule, "its regex can never match");
      }
    }
    for (std::size_t i : compiled.meta) {  // enabled metas, each after the metas it uses
      Rule& rule = compiled.rules[i];
      auto value = rule.meta->constantValue(known);
      if (value && *value == 0) {
        known[i] = 0.0;
        never(rule, "meta can never be true");
      }
    }
    for (std::size_t i = 0; i < compiled.rules.size(); ++i) {
      const Rule& rule = compiled.rules[i];
      if (rule.enabled && rule.name.starts_with("__") && !read_by_meta.contains(i) && !known[i]) {
        never(rule, "subrule read by no meta (scores nothing)");
      }
    }
  }

  LintReport& report_;
  std::vector<Definition> definitions_;
  std::map<std::string, std::size_t> index_;
  std::set<std::string> skipped_names_;
  std::map<std::string, Setting> scores_, descriptions_, tflags_;
  ReplaceTags replace_tags_;
  std::map<std::string, std::size_t> slot_;
};

}  // namespace

std::unique_ptr<CompiledRules> RuleSetBuilder::build(const std::vector<Statement>& statements) {
  Builder builder(report_);
  return builder.run(statements);
}

}  // namespace mailgate::rules
