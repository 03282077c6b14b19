#pragma once
// `mailgate log [FILES...]`: reads decision logs back for people (README "Reviewing decisions:
// mailgate log"). It reads JSON only: nothing of the server (net, pipeline, filters) is linked
// into what it runs.

#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/logtool/record_filter.h"

namespace mailgate::logtool {

// --history: searches the history file at `path` with `filter`, oldest first, giving each matching
// record's line (RecordReader::padding_octets readable after it). Given by the caller, since the
// history (gateway/history/) is built on this layer.
using HistorySearch = std::function<std::expected<void, std::string>(
    const std::string& path, const RecordFilter& filter, const std::function<void(std::string_view line)>& each)>;

// The arguments after "log". 0: the logs were read (malformed lines are reported on standard
// error and skipped, not an error); 1: a file could not be read or the configuration named by
// --config could not be used; 2: a usage error.
int runLogCommand(const std::vector<std::string>& arguments, const HistorySearch& search_history = {});

}  // namespace mailgate::logtool
