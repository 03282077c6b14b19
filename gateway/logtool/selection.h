#pragma once
// What a query keeps of a run of lines: the matching records in the chosen output's form (JSON
// lines, table rows, summary counts) and the count of malformed lines. Several Selectors work on
// parts of a log at once; their Selections are taken in log order (LogQuery).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/logtool/log_options.h"
#include "gateway/logtool/log_record.h"
#include "gateway/logtool/log_summary.h"
#include "gateway/logtool/table_writer.h"

namespace mailgate::logtool {

struct Selection {
  std::string json;  // --json: the matching lines as they were, each ended by '\n'
  std::vector<TableRow> rows;
  LogSummary summary;  // --summary
  uint64_t malformed = 0;
};

class Selector {
 public:
  explicit Selector(const LogOptions& options);

  // One line (RecordReader::padding_octets readable after it). Blank lines are passed over.
  void line(std::string_view text, Selection& into);

 private:
  const LogOptions& options_;
  RecordReader reader_;
  bool needs_decision_;
};

}  // namespace mailgate::logtool
