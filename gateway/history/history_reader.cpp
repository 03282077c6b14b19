#include "gateway/history/history_reader.h"

#include <variant>
#include <vector>

#include "gateway/history/history_database.h"
#include "gateway/logtool/decision.h"
#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

using Value = std::variant<int64_t, std::string, std::pair<std::string, bool>>;  // pair: a blob

// The SQL of a search and what is bound to its placeholders, built together.
struct Query {
  std::string where;
  std::vector<Value> values;

  void add(const std::string& condition) { where += (where.empty() ? " WHERE " : " AND ") + condition; }
  // Numbered placeholders: the order in which the pieces of one condition are built is not the
  // order of the text (operands of + are evaluated in any order).
  std::string text(std::string_view value) { return placeholder(std::string(value)); }
  std::string number(int64_t value) { return placeholder(value); }
  std::string blob(std::string value) { return placeholder(std::pair{std::move(value), true}); }
  std::string placeholder(Value value) {
    values.push_back(std::move(value));
    return "?" + std::to_string(values.size());
  }
};

// LIKE '%needle%' with the needle's own % _ \ taken literally. LIKE folds ASCII only, as the
// filter's needles do.
std::string likePattern(std::string_view needle) {
  std::string out = "%";
  for (char c : needle) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out + "%";
}

// One address pattern against an address column and a reversed-domain column.
std::string addressCondition(Query& query, const logtool::AddressPattern& pattern, const char* address_column,
                             const char* rdomain_column) {
  using Kind = logtool::AddressPattern::Kind;
  switch (pattern.kind()) {
    case Kind::Null: return std::string(address_column) + " = ''";
    case Kind::Address: return std::string(address_column) + " = " + query.text(pattern.text());
    case Kind::Domain: {
      // The domain and its subdomains: "com.example." up to (not including) "com.example/".
      std::string low = reversedDomain(pattern.text());
      std::string high = low;
      high.back() = '/';
      return "(" + std::string(rdomain_column) + " >= " + query.text(low) + " AND " + rdomain_column + " < " +
             query.text(high) + ")";
    }
  }
  return "0";
}

template <class Each>
std::string anyOf(const std::vector<Each>& values, const std::function<std::string(const Each&)>& condition) {
  std::string out;
  for (const auto& value : values) out += (out.empty() ? "(" : " OR ") + condition(value);
  return out + ")";
}

// How far apart a record's time and its place in the history can be (stored in batches, logged
// by several workers): ten minutes is far more than seen, and costs only rows read and dropped.
constexpr int64_t time_to_id_margin_ms = 10 * 60 * 1000;

std::optional<int64_t> idAt(sqlite3* db, const char* sql, int64_t time_ms) {
  auto statement = sqlitePrepare(db, sql);
  if (!statement) return std::nullopt;
  sqliteBind(statement->get(), 1, time_ms);
  if (sqlite3_step(statement->get()) != SQLITE_ROW) return std::nullopt;
  return sqlite3_column_int64(statement->get(), 0);
}

Query queryFor(const logtool::RecordFilter& filter, const HistoryScan& order) {
  Query query;
  if (filter.since) query.add("time_ms >= " + query.number(*filter.since));
  if (filter.until) query.add("time_ms < " + query.number(*filter.until));
  if (order.before_id) query.add("id < " + query.number(*order.before_id));
  if (order.after_id) query.add("id > " + query.number(*order.after_id));
  if (!filter.actions.empty())
    query.add(anyOf<std::string>(filter.actions, [&](const std::string& action) { return "action = " + query.text(action); }));
  if (!filter.message_ids.empty())
    query.add(anyOf<std::string>(filter.message_ids, [&](const std::string& id) { return "message_id = " + query.text(id); }));
  if (!filter.stages.empty())
    query.add(anyOf<std::string>(filter.stages, [&](const std::string& stage) {
      return "stage = " + query.text(stage) + " COLLATE NOCASE";
    }));
  if (!filter.senders.empty())
    query.add(anyOf<logtool::AddressPattern>(filter.senders, [&](const logtool::AddressPattern& pattern) {
      return addressCondition(query, pattern, "sender", "sender_rdomain");
    }));
  if (!filter.recipients.empty())
    query.add("id IN (SELECT decision FROM recipients WHERE " +
              anyOf<logtool::AddressPattern>(filter.recipients, [&](const logtool::AddressPattern& pattern) {
                return addressCondition(query, pattern, "address", "rdomain");
              }) + ")");
  if (!filter.clients.empty())
    query.add(anyOf<logtool::IpNetwork>(filter.clients, [&](const logtool::IpNetwork& network) {
      auto [first, last] = clientKeyRange(network);
      return "(client >= " + query.blob(std::move(first)) + " AND client <= " + query.blob(std::move(last)) + ")";
    }));
  if (!filter.rules.empty())
    query.add("id IN (SELECT decision FROM rule_hits WHERE " +
              anyOf<std::string>(filter.rules, [&](const std::string& rule) { return "rule = " + query.text(rule); }) + ")");
  for (const auto& subject : filter.subjects) query.add("subject LIKE " + query.text(likePattern(subject.text())) + " ESCAPE '\\'");
  for (const auto& word : filter.words) query.add("record LIKE " + query.text(likePattern(word.text())) + " ESCAPE '\\'");
  return query;
}

}  // namespace

std::expected<HistoryReader, std::string> HistoryReader::open(const std::string& path) {
  auto db = openHistory(path, HistoryAccess::Read);
  if (!db) return std::unexpected(db.error());
  return HistoryReader(std::move(*db));
}

std::expected<void, std::string> HistoryReader::scan(const logtool::RecordFilter& filter, const HistoryScan& order,
                                                     const Found& found) {
  Query query = queryFor(filter, order);
  // Decisions are stored in the order they are logged, so a time range is also a range of ids,
  // which lets SQLite walk the rows newest (or oldest) first and stop at the range's end instead of
  // reading every row past it. Records reach the history within moments of their time; the margin
  // covers that, and the time condition itself still decides.
  if (filter.since) {
    auto first = idAt(db_.get(), "SELECT id FROM decisions WHERE time_ms >= ?1 ORDER BY time_ms LIMIT 1",
                      *filter.since - time_to_id_margin_ms);
    query.add(first ? "id >= " + query.number(*first) : std::string("0"));
  }
  if (filter.until) {
    auto last = idAt(db_.get(), "SELECT id FROM decisions WHERE time_ms < ?1 ORDER BY time_ms DESC LIMIT 1",
                     *filter.until + time_to_id_margin_ms);
    query.add(last ? "id <= " + query.number(*last) : std::string("0"));
  }
  std::string sql = "SELECT id, record FROM decisions" + query.where + " ORDER BY id" + (order.newest_first ? " DESC" : "");
  auto statement = sqlitePrepare(db_.get(), sql);
  if (!statement) return std::unexpected(statement.error());
  sqlite3_stmt* select = statement->get();
  for (std::size_t i = 0; i < query.values.size(); ++i) {
    int index = static_cast<int>(i + 1);
    const Value& value = query.values[i];
    if (const auto* number = std::get_if<int64_t>(&value)) sqliteBind(select, index, *number);
    else if (const auto* text = std::get_if<std::string>(&value)) sqliteBind(select, index, std::string_view(*text));
    else sqliteBindBlob(select, index, std::get<2>(value).first);
  }
  logtool::RecordReader reader;
  std::string padded;
  int step;
  while ((step = sqlite3_step(select)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(select, 0);
    std::string_view line = sqliteText(select, 1);
    padded.assign(line);
    padded.append(logtool::RecordReader::padding_octets, '\0');
    std::string_view text(padded.data(), line.size());
    const logtool::LogRecord* record = reader.read(text);
    if (record == nullptr || !filter.lineMatches(text) || !filter.recordMatches(*record)) continue;
    if (filter.needsDecision() && !filter.decisionMatches(logtool::decisionOf(*record))) continue;
    if (!found(id, text, *record)) return {};
  }
  if (step != SQLITE_DONE) return std::unexpected(sqliteProblem(db_.get(), "search"));
  return {};
}

std::optional<std::string> HistoryReader::record(int64_t id) {
  auto statement = sqlitePrepare(db_.get(), "SELECT record FROM decisions WHERE id = ?");
  if (!statement) return std::nullopt;
  sqliteBind(statement->get(), 1, id);
  if (sqlite3_step(statement->get()) != SQLITE_ROW) return std::nullopt;
  return std::string(sqliteText(statement->get(), 0));
}

HistoryReader::Extent HistoryReader::extent() {
  Extent extent;
  auto statement = sqlitePrepare(db_.get(), "SELECT count(*), coalesce(min(time_ms), 0), coalesce(max(time_ms), 0) FROM decisions");
  if (statement && sqlite3_step(statement->get()) == SQLITE_ROW) {
    extent.decisions = sqlite3_column_int64(statement->get(), 0);
    extent.oldest_ms = sqlite3_column_int64(statement->get(), 1);
    extent.newest_ms = sqlite3_column_int64(statement->get(), 2);
  }
  return extent;
}

}  // namespace mailgate
