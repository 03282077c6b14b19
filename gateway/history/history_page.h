#pragma once
// The decision-history web page, served read-only by the [metrics] listener (README "The decision
// history"): /history searches (the fields of `mailgate log`, newest first, a page of rows at a
// time), /history/decision?id=N shows one transaction with every stage's verdict and rule hits,
// /history/summary shows `mailgate log --summary`'s figures and a chart of decisions per hour.
// Plain HTML rendered here, no script needed; every text from a record is escaped.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/history/history_reader.h"

namespace mailgate {

struct PageReply {
  unsigned status = 200;
  std::string body;
  const char* content_type = "text/html; charset=utf-8";
};

class HistoryPage {
 public:
  // Rows on one page of results.
  static constexpr std::size_t page_rows = 50;

  // `path`: the history file, opened read-only for each request (the gateway's writer creates it).
  explicit HistoryPage(std::string path) : path_(std::move(path)) {}

  // A query argument's value (URL-decoded), or nullopt when absent.
  using Argument = std::function<std::optional<std::string>(const char* name)>;
  // Thread-safe: each request reads through a connection of its own (SQLite's WAL lets them all
  // read while the gateway writes), so a long summary never holds up another request.
  PageReply answer(std::string_view url, const Argument& argument) const;

 private:
  PageReply search(const Argument& argument) const;
  PageReply decision(const Argument& argument) const;
  PageReply summary(const Argument& argument) const;

  std::string path_;
};

// &, <, >, " and ' as entities.
std::string htmlEscaped(std::string_view text);

}  // namespace mailgate
