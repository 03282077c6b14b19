#pragma once
// Reads a log to its end with every core: the reading thread cuts the text into chunks of whole
// lines, each chunk is selected on a thread of its own (std::async), and the Selections are
// handed back in the order of the log. Parsing is what a query spends its time on (simdjson's two
// stages are most of it), and records do not depend on each other.

#include <cstddef>
#include <expected>
#include <functional>
#include <string>

#include "gateway/logtool/line_reader.h"
#include "gateway/logtool/log_options.h"
#include "gateway/logtool/selection.h"

namespace mailgate::logtool {

// A megabyte of lines per chunk: about a thousand records, enough to make a thread's start and
// the merge of its results negligible, few enough that memory stays a few megabytes per core.
inline constexpr std::size_t chunk_octets = 1024 * 1024;

// `take` runs on the calling thread, in log order. `keep_last_line`: a line the file does not end
// yet is left in `lines` (--follow reads it once it is whole). Oversized lines count as malformed.
std::expected<void, std::string> scanInParallel(LineReader& lines, const LogOptions& options, bool keep_last_line,
                                                const std::function<void(Selection&&)>& take);

}  // namespace mailgate::logtool
