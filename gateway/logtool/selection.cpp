#include "gateway/logtool/selection.h"

#include <algorithm>

#include "gateway/logtool/decision.h"

namespace mailgate::logtool {
namespace {

bool blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

}  // namespace

Selector::Selector(const LogOptions& options)
    : options_(options), needs_decision_(options.filter.needsDecision() || !options.json || options.summary) {}

void Selector::line(std::string_view text, Selection& into) {
  if (blank(text)) return;
  // Every line is parsed, also where the words alone could rule it out, so that the count of
  // malformed lines is the same whatever the query.
  const LogRecord* record = reader_.read(text);
  if (record == nullptr) {
    ++into.malformed;
    return;
  }
  const RecordFilter& filter = options_.filter;
  if (!filter.lineMatches(text) || !filter.recordMatches(*record)) return;
  Decision decision;
  if (needs_decision_) decision = decisionOf(*record);
  if (!filter.decisionMatches(decision)) return;
  if (options_.summary) {
    into.summary.add(*record, decision);
  } else if (options_.json) {
    into.json.append(text);
    into.json += '\n';
  } else {
    into.rows.push_back(tableRow(*record, decision, options_.wide));
  }
}

}  // namespace mailgate::logtool
