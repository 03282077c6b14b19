#pragma once
// The inside of a RuleSet: every rule compiled, grouped the way a scan runs them. Built by
// RuleSetBuilder, read by RuleSet::scan; immutable in between.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "rules/header_query.h"
#include "rules/meta_expression.h"
#include "rules/regex.h"

namespace mailgate::rules {

enum class RuleKind { Header, MimeHeader, Body, Rawbody, Uri, Full, Meta };

// tflags multiple without maxhits: SpamAssassin counts every match; a hostile message with a
// million matches should not cost a million steps or an absurd score.
constexpr unsigned default_max_hits = 1000;

struct Rule {
  std::string name;
  RuleKind kind = RuleKind::Body;
  std::string file;
  int line = 0;
  double score = 1.0;
  std::string description;
  bool multiple = false;
  unsigned max_hits = 1;
  bool enabled = true;  // score 0: not run at all, and reads as 0 in metas (as in SpamAssassin)

  std::optional<Regex> regex;
  bool negated = false;      // !~
  bool exists_test = false;  // exists:Header
  std::optional<std::string> if_unset;
  std::size_t query = 0;                           // Header: index into CompiledRules::queries
  std::string mime_header;                         // MimeHeader: the field name
  bool mime_raw = false;                           // MimeHeader: :raw
  std::optional<MetaExpression> meta;
};

struct CompiledRules {
  std::vector<Rule> rules;  // every rule defined, enabled or not; the index is its meta slot
  std::vector<HeaderQuery> queries;
  // Enabled rules by kind, in definition order; metas in dependency order.
  std::vector<std::size_t> header, mime_header, body, rawbody, uri, full, meta;
};

}  // namespace mailgate::rules
