// The rule engine alone, steady state: load a rule set once, then parse and scan one message
// again and again, timing each pass. bench/rules runs it next to SpamAssassin on the same rules
// and messages; it prints one JSON object so that the script can read it.
//
// usage: rules_bench RULES_PATH MESSAGE [ITERATIONS]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rules/message_view.h"
#include "rules/rule_set.h"

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s RULES_PATH MESSAGE [ITERATIONS]\n", argv[0]);
    return 2;
  }
  const int iterations = argc == 4 ? std::max(1, std::atoi(argv[3])) : 100;
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", argv[2]);
    return 2;
  }
  const std::string message{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};

  using mailgate::rules::MessageView;
  using mailgate::rules::RuleSet;
  mailgate::rules::LintReport report;
  const auto load_start = Clock::now();
  auto loaded = RuleSet::load({argv[1]}, &report);
  const double load_ms = msSince(load_start);
  if (!loaded) {
    for (const auto& problem : loaded.error()) std::fprintf(stderr, "%s\n", problem.str().c_str());
    return 1;
  }
  const auto& rules = *loaded;

  // One pass first: JIT code, allocator and page cache warm, as on a running gateway.
  auto result = rules->scan(MessageView::parse(message));
  std::vector<double> times;
  times.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    result = rules->scan(MessageView::parse(message));
    times.push_back(msSince(start));
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  nlohmann::json hits = nlohmann::json::array();
  for (const auto& hit : result.hits) hits.push_back(hit.name);
  const nlohmann::json out = {
      {"rules", rules->size()},
      {"skipped", report.skipped.size()},
      {"bytes", message.size()},
      {"iterations", iterations},
      {"load_ms", load_ms},
      {"ms_median", sorted[sorted.size() / 2]},
      {"ms_mean", std::accumulate(times.begin(), times.end(), 0.0) / times.size()},
      {"ms_min", sorted.front()},
      {"score", result.score},
      {"hits", hits},
  };
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
