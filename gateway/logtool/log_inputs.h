#pragma once
// Which files `mailgate log` reads, and in which order: several logs are read oldest first, told
// by their first record's time, so decisions.jsonl.2.gz, decisions.jsonl.1.gz, decisions.jsonl
// come out in time order whatever order the shell listed them in.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/logtool/line_reader.h"
#include "gateway/logtool/log_stream.h"
#include "gateway/logtool/time_bound.h"

namespace mailgate::logtool {

// An open log and its line splitter (which reads from the stream it points to).
struct OpenLog {
  std::unique_ptr<LogStream> stream;
  std::unique_ptr<LineReader> lines;

  static std::expected<OpenLog, std::string> open(const std::string& path);
};

// The log at `path` and its rotated files beside it: PATH.1, PATH.2.gz (logrotate's numbering),
// PATH-20261207, PATH-20261207.gz (its dateext). Those that exist.
std::vector<std::string> withRotatedFiles(const std::string& path);

// The time of the first record in the first megabyte of the file; nullopt when none is there or
// the file cannot be read.
std::optional<EpochMs> firstRecordTime(const std::string& path);

// Files ordered by firstRecordTime(), then those without one, then standard input ("-"); equal
// times keep the order given.
std::vector<std::string> inTimeOrder(std::vector<std::string> files);

}  // namespace mailgate::logtool
