#include "gateway/logtool/log_command.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <optional>

#include "gateway/config/config.h"
#include "gateway/logtool/decision.h"
#include "gateway/logtool/log_follower.h"
#include "gateway/logtool/log_inputs.h"
#include "gateway/logtool/log_options.h"
#include "gateway/logtool/log_record.h"
#include "gateway/logtool/log_summary.h"
#include "gateway/logtool/table_writer.h"

namespace mailgate::logtool {
namespace {

// Output is written in large blocks (a --json query over a big log writes as much as it reads).
constexpr std::size_t output_buffer_octets = 1024 * 1024;

volatile std::sig_atomic_t interrupted = 0;
void onInterrupt(int) { interrupted = 1; }

bool blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// Reads records, keeps those that match, and hands them to the chosen output.
class LogQuery {
 public:
  explicit LogQuery(const LogOptions& options)
      : options_(options), table_(stdout, options.wide), needs_decision_(options.filter.needsDecision() || !options.json ||
                                                                          options.summary) {}

  void line(std::string_view text) {
    if (blank(text)) return;
    const LogRecord* record = reader_.read(text);
    if (record == nullptr) {
      ++malformed_;
      return;
    }
    const RecordFilter& filter = options_.filter;
    if (!filter.lineMatches(text) || !filter.recordMatches(*record)) return;
    Decision decision;
    if (needs_decision_) decision = decisionOf(*record);
    if (!filter.decisionMatches(decision)) return;
    if (options_.summary) {
      summary_.add(*record, decision);
    } else if (options_.json) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fputc('\n', stdout);
    } else {
      table_.add(*record, decision);
    }
  }

  // Reads one log to its end; false when it could not be read whole (reported).
  bool readAll(OpenLog& log, bool keep_last_line) {
    while (true) {
      auto next = log.lines->next();
      if (!next) {
        std::fprintf(stderr, "mailgate log: %s\n", next.error().c_str());
        return false;
      }
      if (!*next) break;
      line(**next);
    }
    // A log being followed may be in the middle of writing its last line: that waits.
    if (!keep_last_line)
      if (auto rest = log.lines->unterminated()) line(*rest);
    oversized_ += log.lines->oversized();
    return true;
  }

  void caughtUp() {
    if (!options_.json && !options_.summary) table_.flush(true);
    std::fflush(stdout);
  }

  void finish() {
    if (options_.summary) {
      summary_.setMalformed(malformed_ + oversized_);
      if (options_.json) std::printf("%s\n", summary_.json(options_.top).c_str());
      else summary_.printText(stdout, options_.top);
    } else if (!options_.json) {
      table_.flush();
      if (table_.rows() == 0 && isatty(STDOUT_FILENO)) std::fprintf(stderr, "mailgate log: no matching records\n");
    }
    std::fflush(stdout);
    if (uint64_t skipped = malformed_ + oversized_; skipped > 0)
      std::fprintf(stderr, "mailgate log: %llu malformed line%s skipped\n", static_cast<unsigned long long>(skipped),
                   skipped == 1 ? "" : "s");
  }

 private:
  const LogOptions& options_;
  RecordReader reader_;
  TableWriter table_;
  LogSummary summary_;
  bool needs_decision_;
  uint64_t malformed_ = 0;
  uint64_t oversized_ = 0;
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

}  // namespace

int runLogCommand(const std::vector<std::string>& arguments) {
  auto options = parseLogArguments(arguments, currentTime());
  if (!options) {
    std::fprintf(stderr, "mailgate log: %s\n%s", options.error().c_str(), log_usage);
    return 2;
  }
  if (options->help) {
    std::fputs(log_usage, stdout);
    return 0;
  }
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
    follower.run([&](std::string_view line) { query.line(line); }, [&] { query.caughtUp(); }, interrupted);
  }
  query.finish();
  return status;
}

}  // namespace mailgate::logtool
