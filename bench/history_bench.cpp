// bench/history: the decision history with N stored decisions (default 1,000,000), generated as the
// gateway writes them (HistoryWriter) over a day: how long storing takes, the file's size, and how
// long the web page takes to answer typical searches (HistoryPage::answer: the indexed search, the
// exact filter and the HTML, without the HTTP hop). Prints figures; asserts nothing.
//   build/bench/history_bench [DECISIONS] [FILE]
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "gateway/history/history_page.h"
#include "gateway/history/history_writer.h"

using namespace mailgate;
using Clock = std::chrono::steady_clock;

namespace {

std::string isoTime(int64_t epoch_ms) {
  std::time_t seconds = epoch_ms / 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(epoch_ms % 1000));
  return buffer;
}

// A record shaped like the gateway's: most accepted, some tagged, a tenth refused by rules, a few
// relay denials; senders from 20,000 domains, clients from 50,000 addresses.
std::string record(uint64_t n, int64_t time_ms) {
  uint64_t h = n * 0x9E3779B97F4A7C15ull;
  unsigned kind = static_cast<unsigned>(h >> 60);
  std::string action = kind < 11 ? "accept" : kind < 13 ? "tag" : kind < 15 ? "reject" : "tempfail";
  std::string domain = "d" + std::to_string((h >> 20) % 20000) + ".example";
  std::string sender = "u" + std::to_string((h >> 8) % 500) + "@" + domain;
  std::string client = "10." + std::to_string((h >> 40) % 200) + "." + std::to_string((h >> 32) % 250) + "." +
                       std::to_string(1 + (h >> 24) % 250);
  nlohmann::json stages = nlohmann::json::array();
  stages.push_back({{"stage", "spf"}, {"verdict", "continue"}, {"reason", "pass"}, {"ms", 0.4}});
  if (action == "tag" || action == "reject")
    stages.push_back({{"stage", "rules"},
                      {"verdict", action},
                      {"reason", "score 7.5 (RULE_" + std::to_string(h % 40) + ")"},
                      {"reply", action == "reject" ? "550 5.7.1 Message refused as spam" : ""},
                      {"hits", {{{"rule", "RULE_" + std::to_string(h % 40)}, {"score", 7.5}, {"description", "a rule"}}}},
                      {"ms", 0.9}});
  std::string reply = action == "accept" || action == "tag" ? "250 2.0.0 Ok: queued as Q" + std::to_string(n)
                      : action == "reject"                  ? "550 5.7.1 Message refused as spam"
                                                            : "451 4.7.1 Try again later";
  nlohmann::json out = {{"time", isoTime(time_ms)},
                        {"type", "transaction"},
                        {"session", n},
                        {"client", {{"ip", client}, {"port", 40000 + n % 20000}}},
                        {"helo", "mail." + domain},
                        {"sender", sender},
                        {"recipients", {{{"address", "user" + std::to_string(h % 300) + "@example.org"}, {"reply", "250 2.1.5 Ok"}, {"action", "accept"}}}},
                        {"size", 10240},
                        {"subject", "Message number " + std::to_string(n) + " about topic " + std::to_string(h % 1000)},
                        {"message_id", "<" + std::to_string(n) + "." + std::to_string(h % 100000) + "@" + domain + ">"},
                        {"stages", stages},
                        {"action", action},
                        {"reply", reply},
                        {"downstream_reply", action == "accept" || action == "tag" ? reply : ""},
                        {"queue_id", action == "accept" || action == "tag" ? "Q" + std::to_string(n) : ""}};
  return out.dump();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t decisions = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  std::string path = argc > 2 ? argv[2] : "/tmp/mailgate-history-bench-" + std::to_string(::getpid()) + ".sqlite";
  bool keep = argc > 2;
  if (!std::filesystem::exists(path)) {
    HistoryConfig config;
    config.path = path;
    config.max_size = uint64_t{64} << 30;
    auto writer = HistoryWriter::start(config);
    if (!writer) {
      std::fprintf(stderr, "%s\n", writer.error().c_str());
      return 1;
    }
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    int64_t start_ms = now - 24LL * 3600 * 1000;
    auto started = Clock::now();
    for (uint64_t n = 0; n < decisions; ++n) {
      std::string line = record(n, start_ms + static_cast<int64_t>(n * 24 * 3600 * 1000 / decisions));
      // Fed as fast as the writer stores: a full queue would drop, as the gateway's would.
      while ((*writer)->stored() + 4'000 < n) usleep(1000);
      (*writer)->take(line);
    }
    (*writer)->stop(std::chrono::minutes(10));
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::printf("stored %llu decisions in %.1f s (%.0f per second, one writer thread), dropped %llu\n",
                static_cast<unsigned long long>((*writer)->stored()), seconds, static_cast<double>((*writer)->stored()) / seconds,
                static_cast<unsigned long long>((*writer)->dropped()));
  }
  std::printf("file: %.0f MiB (%s)\n", static_cast<double>(std::filesystem::file_size(path)) / (1 << 20), path.c_str());

  HistoryPage page(path);
  struct Search {
    const char* what;
    std::vector<std::pair<const char*, std::string>> arguments;
    const char* url = "/history";
  };
  std::vector<Search> searches = {
      {"newest 50, no filter", {}},
      {"sender domain", {{"from", "d1234.example"}}},
      {"sender address", {{"from", "u17@d4321.example"}}},
      {"recipient", {{"to", "user42@example.org"}}},
      {"client /24", {{"client", "10.17.42.0/24"}}},
      {"action reject", {{"action", "reject"}}},
      {"rule", {{"rule", "RULE_7"}}},
      {"message-id", {{"message_id", "<777777.0@d0.example>"}}},
      {"subject words, last 2h", {{"subject", "topic 999"}, {"since", "2h"}}},
      {"free text, whole day", {{"q", "Q999999"}}},
      {"reject from a domain, 6h", {{"from", "d77.example"}, {"action", "reject"}, {"since", "6h"}}},
      {"summary, last hour", {{"since", "1h"}}, "/history/summary"},
      {"summary, whole day", {{"since", "25h"}}, "/history/summary"},
  };
  std::printf("%-32s %10s %10s %8s\n", "search", "first ms", "median ms", "rows");
  for (const auto& search : searches) {
    auto argument = [&](const char* name) -> std::optional<std::string> {
      for (const auto& [key, value] : search.arguments)
        if (std::string_view(key) == name) return value;
      return std::nullopt;
    };
    std::vector<double> times;
    std::size_t rows = 0;
    for (int run = 0; run < 5; ++run) {
      auto started = Clock::now();
      PageReply reply = page.answer(search.url, argument);
      times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - started).count());
      rows = 0;
      for (std::size_t at = reply.body.find("class=\"decision\""); at != std::string::npos; at = reply.body.find("class=\"decision\"", at + 1)) ++rows;
      if (reply.status != 200) std::printf("  %s: HTTP %u\n", search.what, reply.status);
    }
    double first = times.front();
    std::sort(times.begin(), times.end());
    std::printf("%-32s %10.1f %10.1f %8zu\n", search.what, first, times[times.size() / 2], rows);
  }
  if (!keep) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
  return 0;
}
