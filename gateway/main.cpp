// mailgate: an inbound mail-filtering SMTP gateway. See README.md.

#include <cstdio>
#include <cstring>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filters/builtin_stages.h"
#include "gateway/commands/check_command.h"
#include "gateway/config/config.h"
#include "gateway/history/history_database.h"
#include "gateway/history/history_reader.h"
#include "gateway/commands/resolve_command.h"
#include "gateway/logtool/log_command.h"
#include "gateway/net/descriptor_limit.h"
#include "gateway/server.h"
#include "gateway/tls/server_tls.h"
#include "rules/lint_command.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: mailgate [--config FILE]        run the gateway (no FILE: the embedded default)\n"
               "       mailgate --check-config FILE    validate FILE and exit (0: valid, 1: not)\n"
               "       mailgate --print-default-config print the embedded default configuration\n"
               "       mailgate resolve [--config FILE] NAME [TYPE]   ask the gateway's resolver (TYPE: A, AAAA,\n"
               "                                       MX, TXT, PTR, SPF; default A; PTR of an IP address\n"
               "                                       asks its in-addr.arpa / ip6.arpa name)\n"
               "       mailgate check [--from ADDR] [--rcpt ADDR]... [--ip IP] [--helo NAME] [--config FILE] [--json]\n"
               "                      MESSAGE   run the configured pipeline on one message offline and\n"
               "                                       print the verdict, reply, score, rule hits and headers\n"
               "                                       (MESSAGE \"-\": standard input; no --ip: client 127.0.0.1)\n"
               "       mailgate rules lint PATH...     report errors, skipped lines and never-matching rules\n"
               "       mailgate log [FILES...] [--since T] [--until T] [--action A] [--from X] [--to X]\n"
               "                    [--client CIDR] [--subject S] [--message-id ID] [--stage S] [--rule R]\n"
               "                    [--json | --summary] [--follow] [WORDS...]   read decision logs back\n"
               "       mailgate --version | --help\n");
}

// What the loader decided in the operator's place (config.h), said wherever a config is used.
void printNotices(const mailgate::Config& config) {
  for (const auto& notice : config.notices) std::fprintf(stderr, "%s: %s\n", config.source.c_str(), notice.c_str());
}

// `mailgate log --history`: the history's indexes narrow, the log command's filter decides.
std::expected<void, std::string> searchHistory(const std::string& path, const mailgate::logtool::RecordFilter& filter,
                                               const std::function<void(std::string_view)>& each) {
  auto reader = mailgate::HistoryReader::open(path);
  if (!reader) return std::unexpected(reader.error());
  return reader->scan(filter, mailgate::HistoryScan{}, [&](int64_t, std::string_view line, const mailgate::logtool::LogRecord&) {
    each(line);
    return true;
  });
}

int checkConfig(const std::string& path) {
  auto config = mailgate::loadConfig(path);
  if (!config) {
    for (const auto& error : config.error()) std::fprintf(stderr, "%s\n", error.text().c_str());
    return 1;
  }
  printNotices(*config);
  // The certificates and keys named in the file must load, match and be in date.
  if (auto errors = mailgate::checkTlsFiles(*config); !errors.empty()) {
    for (const auto& error : errors) std::fprintf(stderr, "%s: %s\n", path.c_str(), error.c_str());
    return 1;
  }
  if (config->history) {
    if (auto problem = mailgate::checkHistoryPath(config->history->path); !problem.empty()) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), problem.c_str());
      return 1;
    }
  }
  auto pipeline = mailgate::buildPipeline(*config);
  if (!pipeline) {
    for (const auto& error : pipeline.error()) std::fprintf(stderr, "%s\n", error.text().c_str());
    return 1;
  }
  // Under the limits the service will run with (systemd runs ExecStartPre= with the unit's
  // LimitNOFILE=): a warning, not an error, since the gateway runs, refusing what does not fit.
  auto limit = mailgate::currentDescriptorLimit(
      mailgate::descriptorsNeeded(*config, mailgate::workerCount(config->server)));
  if (auto shortfall = mailgate::descriptorShortfall(limit, config->server.max_connections); !shortfall.empty())
    std::fprintf(stderr, "%s: %s\n", path.c_str(), shortfall.c_str());
  std::printf("%s: configuration is valid (%zu stages)\n", path.c_str(), (*pipeline)->stages().size());
  return 0;
}

std::optional<mailgate::Config> configFrom(const std::optional<std::string>& path) {
  if (!path) return mailgate::embeddedDefaultConfig();
  auto loaded = mailgate::loadConfig(*path);
  if (!loaded) {
    for (const auto& error : loaded.error()) std::fprintf(stderr, "%s\n", error.text().c_str());
    return std::nullopt;
  }
  printNotices(*loaded);
  return std::move(*loaded);
}

int resolveCommand(int argc, char** argv) {
  std::optional<std::string> config_path;
  std::vector<std::string> words;
  for (int i = 2; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument == "--config" && i + 1 < argc) config_path = argv[++i];
    else words.push_back(argument);
  }
  if (words.empty() || words.size() > 2) {
    usage(stderr);
    return 2;
  }
  auto config = configFrom(config_path);
  if (!config) return 1;
  return mailgate::runResolveCommand(*config, words[0], words.size() == 2 ? words[1] : "A");
}

int checkCommand(int argc, char** argv) {
  std::optional<std::string> config_path;
  std::string error;
  auto request = mailgate::parseCheckArguments(std::vector<std::string>(argv + 2, argv + argc), config_path, error);
  if (!request) {
    std::fprintf(stderr, "mailgate check: %s\n", error.c_str());
    usage(stderr);
    return 2;
  }
  auto config = configFrom(config_path);
  if (!config) return 1;
  return mailgate::runCheckCommand(*config, *request);
}

int rulesCommand(int argc, char** argv) {
  if (argc < 4 || std::string_view(argv[2]) != "lint") {
    usage(stderr);
    return 2;
  }
  return mailgate::rules::runLintCommand(std::vector<std::string>(argv + 3, argv + argc));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "resolve") return resolveCommand(argc, argv);
  if (argc >= 2 && std::string_view(argv[1]) == "check") return checkCommand(argc, argv);
  if (argc >= 2 && std::string_view(argv[1]) == "rules") return rulesCommand(argc, argv);
  if (argc >= 2 && std::string_view(argv[1]) == "log")
    return mailgate::logtool::runLogCommand(std::vector<std::string>(argv + 2, argv + argc), searchHistory);
  std::optional<std::string> config_path;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    bool has_value = i + 1 < argc;
    if (argument == "--help" || argument == "-h") {
      usage(stdout);
      return 0;
    }
    if (argument == "--version") {
      std::printf("mailgate %s\n", MAILGATE_VERSION);
      return 0;
    }
    if (argument == "--print-default-config") {
      std::fputs(std::string(mailgate::embeddedDefaultConfigText()).c_str(), stdout);
      return 0;
    }
    if (argument == "--check-config" && has_value) return checkConfig(argv[++i]);
    if (argument == "--config" && has_value) {
      config_path = argv[++i];
      continue;
    }
    std::fprintf(stderr, "mailgate: unknown or incomplete argument '%s'\n", argument.c_str());
    usage(stderr);
    return 2;
  }
  auto config = configFrom(config_path);
  if (!config) return 1;
  return mailgate::runServer(std::move(*config), config_path);
}
