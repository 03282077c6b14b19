#include "gateway/logtool/log_options.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <string_view>

namespace mailgate::logtool {

const char* const log_usage =
    "usage: mailgate log [FILES...] [--since T] [--until T] [--action A[,B]] [--from ADDR|DOMAIN]\n"
    "                    [--to ADDR|DOMAIN] [--client IP|CIDR] [--subject TEXT] [--message-id ID]\n"
    "                    [--stage NAME] [--rule NAME] [--json | --summary [--top N]] [--follow] [--wide]\n"
    "                    [--config FILE] [--history[=FILE]] [WORDS...] [-- WORDS...]\n";

const char* const log_help =
    "  FILES  plain or gzip, read oldest first; -: standard input; none: --config FILE's log.path\n"
    "         and its rotated files, or else a pipe on standard input\n"
    "  T      before now: 90s, 15m, 2h, 3d, 1w, 1h30m; or UTC: 2026-12-07, \"2026-12-07 14:00\",\n"
    "         2026-12-07T14:00:00Z (--since is inclusive, --until is not)\n"
    "  A      accept, tag, tempfail, reject, abandoned, none (repeat or comma-separate)\n"
    "  ADDR|DOMAIN  an address, any case; a domain (example.com, @example.com) and its\n"
    "         subdomains; <> the null sender. --to matches any recipient\n"
    "  --stage  the stage that decided (also smtp, downstream); --rule  a rule that hit\n"
    "  WORDS  each anywhere in the raw JSON line, any case\n"
    "  table (default; --wide: nothing cut), --json: the records as they are, --summary: counts\n"
    "  --follow (-f): then print records as they are appended, until interrupted\n"
    "  --history: search the decision history ([history] of --config FILE, or FILE) with its\n"
    "         indexes instead of reading logs; the same filters and output\n";

namespace {

constexpr std::array<std::string_view, 12> value_options = {
    "--config", "--since", "--until", "--action", "--from", "--to", "--client", "--subject", "--message-id",
    "--stage", "--rule", "--top"};
constexpr std::array<std::string_view, 6> actions = {"accept", "tag", "tempfail", "reject", "abandoned", "none"};

// A word that is meant as a file although none exists: say so rather than search for it.
bool looksLikePath(std::string_view word) {
  return word.find('/') != std::string_view::npos || word.ends_with(".jsonl") || word.ends_with(".gz") ||
         word.ends_with(".log") || word.ends_with(".json");
}

std::expected<void, std::string> addActions(std::string_view list, std::vector<std::string>& out) {
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view action = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (action.empty()) continue;
    if (std::find(actions.begin(), actions.end(), action) == actions.end())
      return std::unexpected("--action: '" + std::string(action) +
                             "' is none of accept, tag, tempfail, reject, abandoned, none");
    out.emplace_back(action);
  }
  return {};
}

}  // namespace

std::expected<LogOptions, std::string> parseLogArguments(const std::vector<std::string>& arguments, EpochMs now) {
  LogOptions options;
  RecordFilter& filter = options.filter;
  bool words_only = false;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    std::string argument = arguments[i];
    if (words_only || argument == "-" || !argument.starts_with("-")) {
      std::error_code error;
      if (!words_only && (argument == "-" || std::filesystem::exists(argument, error))) {
        options.files.push_back(argument);
      } else if (!words_only && looksLikePath(argument)) {
        return std::unexpected(argument + ": no such file (a word to search for that looks like a path goes after --)");
      } else {
        filter.words.emplace_back(argument);
      }
      continue;
    }
    if (argument == "--") {
      words_only = true;
      continue;
    }
    // --name=value or --name value
    std::string value;
    bool has_inline_value = false;
    if (auto equals = argument.find('='); argument.starts_with("--") && equals != std::string::npos) {
      value = argument.substr(equals + 1);
      argument.resize(equals);
      has_inline_value = true;
    }
    bool takes_value = std::find(value_options.begin(), value_options.end(), argument) != value_options.end();
    if (takes_value && !has_inline_value) {
      if (i + 1 >= arguments.size()) return std::unexpected(argument + " needs a value");
      value = arguments[++i];
    } else if (!takes_value && has_inline_value && argument != "--history") {
      return std::unexpected(argument + " takes no value");
    }
    if (argument == "--history") {
      if (has_inline_value && value.empty()) return std::unexpected("--history=: name the history file");
      options.history = value;
      continue;
    }
    if (argument == "--help" || argument == "-h") options.help = true;
    else if (argument == "--json") options.json = true;
    else if (argument == "--summary") options.summary = true;
    else if (argument == "--follow" || argument == "-f") options.follow = true;
    else if (argument == "--wide") options.wide = true;
    else if (argument == "--config") options.config_path = value;
    else if (argument == "--since" || argument == "--until") {
      auto bound = parseTimeBound(value, now);
      if (!bound) return std::unexpected(argument + ": " + bound.error());
      (argument == "--since" ? filter.since : filter.until) = *bound;
    } else if (argument == "--action") {
      if (auto added = addActions(value, filter.actions); !added) return std::unexpected(added.error());
    } else if (argument == "--from" || argument == "--to") {
      auto pattern = AddressPattern::parse(value);
      if (!pattern) return std::unexpected(argument + ": " + pattern.error());
      (argument == "--from" ? filter.senders : filter.recipients).push_back(std::move(*pattern));
    } else if (argument == "--client") {
      auto network = IpNetwork::parse(value);
      if (!network) return std::unexpected("--client: " + network.error());
      filter.clients.push_back(*network);
    } else if (argument == "--subject") filter.subjects.emplace_back(value);
    else if (argument == "--message-id") filter.message_ids.emplace_back(withoutAngleBrackets(value));
    else if (argument == "--stage") filter.stages.push_back(value);
    else if (argument == "--rule") filter.rules.push_back(value);
    else if (argument == "--top") {
      bool number = !value.empty() && value.size() <= 9 &&
                    std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!number || std::stoul(value) == 0) return std::unexpected("--top: '" + value + "' is not a positive number");
      options.top = std::stoul(value);
    } else {
      return std::unexpected("unknown option '" + argument + "'");
    }
  }
  if (options.follow && options.summary) return std::unexpected("--follow and --summary do not go together");
  if (options.history && options.follow) return std::unexpected("--history and --follow do not go together");
  if (options.history && !options.files.empty())
    return std::unexpected("--history searches the history, not FILES: give one or the other");
  return options;
}

}  // namespace mailgate::logtool
