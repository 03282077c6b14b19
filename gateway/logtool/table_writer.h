#pragma once
// The default output: one aligned row per record. Widths are measured on the first batch of rows
// (all of them for a short answer), each column capped so that a row fits a wide terminal; a
// longer field is cut with "…" (--wide: never cut; a column then grows to its widest value in the
// batch). Rows are printed in batches so that a query over a large log streams, and --follow
// prints each poll's records as they come.

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "gateway/logtool/decision.h"
#include "gateway/logtool/log_record.h"

namespace mailgate::logtool {

inline constexpr std::size_t table_columns = 8;
using TableRow = std::array<std::string, table_columns>;

// One record's cells: TIME CLIENT SENDER RECIPIENTS ACTION REPLY STAGE REASON. Built apart from
// the writer, so that worker threads build rows and one writer prints them in order.
TableRow tableRow(const LogRecord& record, const Decision& decision, bool wide);

class TableWriter {
 public:
  static constexpr std::size_t column_count = table_columns;
  // Rows held to measure the columns before the first is printed.
  static constexpr std::size_t batch_rows = 1000;

  TableWriter(std::FILE* out, bool wide);

  void add(TableRow row);
  // Prints the rows held (the header first, once). With no row ever added, prints nothing unless
  // `header_anyway` (--follow shows its columns while it waits).
  void flush(bool header_anyway = false);
  std::size_t rows() const { return rows_; }

 private:
  using Row = TableRow;
  void measure();
  void print(const Row& row);

  std::FILE* out_;
  bool wide_;
  std::vector<Row> held_;
  std::array<std::size_t, column_count> widths_{};
  bool measured_ = false;
  std::size_t rows_ = 0;
};

// Width on a terminal, counted in UTF-8 characters (wide East Asian characters count one).
std::size_t displayWidth(std::string_view text);
// At most `width` characters, the last one "…" when cut.
std::string truncated(std::string_view text, std::size_t width);

}  // namespace mailgate::logtool
