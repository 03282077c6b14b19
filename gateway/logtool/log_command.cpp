#include "gateway/logtool/log_command.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <optional>
#include <utility>

#include "gateway/config/config.h"
#include "gateway/logtool/decision.h"
#include "gateway/logtool/log_follower.h"
#include "gateway/logtool/log_inputs.h"
#include "gateway/logtool/log_options.h"
#include "gateway/logtool/log_record.h"
#include "gateway/logtool/log_summary.h"
#include "gateway/logtool/parallel_scan.h"
#include "gateway/logtool/selection.h"
#include "gateway/logtool/table_writer.h"

namespace mailgate::logtool {
namespace {

// Output is written in large blocks (a --json query over a big log writes as much as it reads).
constexpr std::size_t output_buffer_octets = 1024 * 1024;

volatile std::sig_atomic_t interrupted = 0;
void onInterrupt(int) { interrupted = 1; }

// Takes the Selections of the log's parts in order and prints them in the chosen form.
class LogQuery {
 public:
  explicit LogQuery(const LogOptions& options) : options_(options), table_(stdout, options.wide) {}

  void take(Selection&& selection) {
    malformed_ += selection.malformed;
    if (options_.summary) {
      summary_.merge(selection.summary);
    } else if (options_.json) {
      std::fwrite(selection.json.data(), 1, selection.json.size(), stdout);
    } else {
      for (auto& row : selection.rows) table_.add(std::move(row));
    }
  }

  // Reads one log to its end; false when it could not be read whole (reported).
  bool readAll(OpenLog& log, bool keep_last_line) {
    auto read = scanInParallel(*log.lines, options_, keep_last_line, [this](Selection&& s) { take(std::move(s)); });
    if (!read) std::fprintf(stderr, "mailgate log: %s\n", read.error().c_str());
    return read.has_value();
  }

  void caughtUp() {
    if (!options_.json && !options_.summary) table_.flush(true);
    std::fflush(stdout);
  }

  void finish() {
    if (options_.summary) {
      summary_.setMalformed(malformed_);
      if (options_.json) std::printf("%s\n", summary_.json(options_.top).c_str());
      else summary_.printText(stdout, options_.top);
    } else if (!options_.json) {
      table_.flush();
      if (table_.rows() == 0 && isatty(STDOUT_FILENO)) std::fprintf(stderr, "mailgate log: no matching records\n");
    }
    std::fflush(stdout);
    if (malformed_ > 0)
      std::fprintf(stderr, "mailgate log: %llu malformed line%s skipped\n", static_cast<unsigned long long>(malformed_),
                   malformed_ == 1 ? "" : "s");
  }

 private:
  const LogOptions& options_;
  TableWriter table_;
  LogSummary summary_;
  uint64_t malformed_ = 0;
};

// FILES, or else the configuration's log.path and its rotated files, or else standard input.
std::expected<std::vector<std::string>, std::string> inputsOf(const LogOptions& options) {
  if (!options.files.empty()) return options.files;
  if (options.config_path) {
    auto config = loadConfig(*options.config_path);
    if (!config) return std::unexpected(config.error().front().text());
    const std::string& path = config->log.path;
    if (path == "-")
      return std::unexpected(*options.config_path + ": log.path is \"-\" (standard output): name the files to read");
    auto files = withRotatedFiles(path);
    if (options.follow && (files.empty() || files.back() != path)) files.push_back(path);  // to wait for
    if (files.empty()) return std::unexpected(path + " (log.path): no such file");
    return files;
  }
  if (!isatty(STDIN_FILENO)) return std::vector<std::string>{"-"};
  return std::unexpected(
      "no FILES: name the decision logs to read (decisions.jsonl decisions.jsonl.1.gz ...), pipe one in, or give "
      "--config FILE to read the one its log.path names");
}

void installInterruptHandlers() {
  struct sigaction action{};
  action.sa_handler = onInterrupt;  // no SA_RESTART: the poll's sleep ends at once
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// --history's file: the one named, or else the [history] of --config FILE.
std::expected<std::string, std::string> historyPathOf(const LogOptions& options) {
  if (!options.history->empty()) return *options.history;
  if (!options.config_path) return std::unexpected("--history needs the file: --history=FILE, or --config FILE with a [history] table");
  auto config = loadConfig(*options.config_path);
  if (!config) return std::unexpected(config.error().front().text());
  if (!config->history) return std::unexpected(*options.config_path + " has no [history] table");
  return config->history->path;
}

int searchHistory(const LogOptions& options, const HistorySearch& search_history) {
  auto path = historyPathOf(options);
  if (!path) {
    std::fprintf(stderr, "mailgate log: %s\n", path.error().c_str());
    return 1;
  }
  if (!search_history) {
    std::fprintf(stderr, "mailgate log: --history is not available in this build\n");
    return 1;
  }
  std::setvbuf(stdout, nullptr, _IOFBF, output_buffer_octets);
  LogQuery query(options);
  Selector selector(options);
  Selection selection;
  std::size_t held = 0;
  auto searched = search_history(*path, options.filter, [&](std::string_view line) {
    selector.line(line, selection);
    if (++held == TableWriter::batch_rows) {
      query.take(std::exchange(selection, Selection{}));
      held = 0;
    }
  });
  query.take(std::move(selection));
  query.finish();
  if (!searched) {
    std::fprintf(stderr, "mailgate log: %s\n", searched.error().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int runLogCommand(const std::vector<std::string>& arguments, const HistorySearch& search_history) {
  auto options = parseLogArguments(arguments, currentTime());
  if (!options) {
    std::fprintf(stderr, "mailgate log: %s\n%s", options.error().c_str(), log_usage);
    return 2;
  }
  if (options->help) {
    std::fputs(log_usage, stdout);
    std::fputs(log_help, stdout);
    return 0;
  }
  if (options->history) return searchHistory(*options, search_history);
  auto inputs = inputsOf(*options);
  if (!inputs) {
    std::fprintf(stderr, "mailgate log: %s\n", inputs.error().c_str());
    return options->config_path ? 1 : 2;
  }
  std::vector<std::string> files = inTimeOrder(std::move(*inputs));
  std::setvbuf(stdout, nullptr, _IOFBF, output_buffer_octets);
  if (options->follow) installInterruptHandlers();

  LogQuery query(*options);
  int status = 0;
  std::optional<OpenLog> followed;
  for (std::size_t i = 0; i < files.size(); ++i) {
    bool follow_this = options->follow && i + 1 == files.size() && files[i] != "-";
    auto log = OpenLog::open(files[i]);
    if (!log) {
      if (!follow_this) {  // a followed file that is not there yet is waited for
        std::fprintf(stderr, "mailgate log: %s\n", log.error().c_str());
        status = 1;
      }
      continue;
    }
    if (!query.readAll(*log, follow_this)) status = 1;
    if (follow_this) followed = std::move(*log);
  }
  if (options->follow && !files.empty() && files.back() != "-") {
    query.caughtUp();
    LogFollower follower(files.back(), std::move(followed));
    // Appended lines come a few at a time: one thread selects them as they come.
    Selector selector(*options);
    Selection selection;
    follower.run([&](std::string_view line) { selector.line(line, selection); },
                 [&] {
                   query.take(std::exchange(selection, Selection{}));
                   query.caughtUp();
                 },
                 interrupted);
    selection.malformed += follower.oversized();
    query.take(std::move(selection));
  }
  query.finish();
  return status;
}

}  // namespace mailgate::logtool
