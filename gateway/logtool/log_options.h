#pragma once
// `mailgate log`'s command line (README "Reviewing decisions: mailgate log").

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "gateway/logtool/record_filter.h"
#include "gateway/logtool/time_bound.h"

namespace mailgate::logtool {

struct LogOptions {
  static constexpr std::size_t default_top = 10;

  std::vector<std::string> files;  // "-": standard input
  std::optional<std::string> config_path;
  // --history: search the decision history instead of files; "" until resolved from --config.
  std::optional<std::string> history;
  RecordFilter filter;
  bool json = false;
  bool summary = false;
  bool follow = false;
  bool wide = false;
  std::size_t top = default_top;
  bool help = false;
};

// The arguments after "log". A word that is not an option is a FILE when it is "-" or names a
// file that exists, and a free-text word otherwise; after "--" every word is free text. `now`
// anchors relative times ("2h").
std::expected<LogOptions, std::string> parseLogArguments(const std::vector<std::string>& arguments, EpochMs now);

extern const char* const log_usage;  // the synopsis
extern const char* const log_help;   // what follows it for --help

}  // namespace mailgate::logtool
