#include "filters/rules/rules_stage.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "gateway/smtp/replies.h"

namespace mailgate {
namespace {

// SpamAssassin folds X-Spam-Status near this width; the test list can be long.
constexpr std::size_t fold_width = 78;
// A budget past this is no budget: the stage's timeout (30 s by default) ends the scan first.
constexpr std::chrono::milliseconds max_scan_budget = std::chrono::minutes(10);

const char* stopName(rules::ScanBudget::Stop stop) {
  switch (stop) {
    case rules::ScanBudget::Stop::None: break;
    case rules::ScanBudget::Stop::Spent: return "budget";
    case rules::ScanBudget::Stop::Cancelled: return "stopped";
  }
  return "";
}

// "Yes, score=7.3 required=5.0 tests=A,B,C" folded with CRLF + tab after a comma.
std::string statusValue(bool spam, double score, double required, const std::vector<rules::RuleHit>& hits) {
  std::string value = std::string(spam ? "Yes" : "No") + ", score=" + formatScore(score) +
                      " required=" + formatScore(required) + " tests=";
  if (hits.empty()) return value + "none";
  std::size_t line_start = 0;
  // Columns taken on the line before the value's own text: "X-Spam-Status: " on the first line,
  // the folding tab on the others.
  std::size_t lead = std::string_view("X-Spam-Status: ").size();
  for (std::size_t i = 0; i < hits.size(); ++i) {
    std::string piece = hits[i].name + (i + 1 < hits.size() ? "," : "");
    if (lead + value.size() - line_start + piece.size() > fold_width && value.back() == ',') {
      value += "\r\n\t";
      line_start = value.size();
      lead = 1;
    }
    value += piece;
  }
  return value;
}

// The first Subject as received, line breaks kept (RFC 2047 words stay encoded), for the prefix.
std::optional<std::string> receivedSubject(const rules::MessageView& view) {
  std::vector<std::string> subjects = view.header("Subject", /*raw=*/true);
  if (subjects.empty()) return std::nullopt;
  std::string value;
  for (char c : subjects.front()) {
    if (c == '\n') value += "\r\n";
    else value += c;
  }
  while (value.ends_with("\r\n")) value.resize(value.size() - 2);
  std::size_t start = value.find_first_not_of(" \t");
  return start == std::string::npos ? std::string() : value.substr(start);
}

}  // namespace

std::string formatScore(double score) {
  char text[32];
  double rounded = std::round(score * 10) / 10;
  std::snprintf(text, sizeof text, "%.1f", rounded == 0 ? 0.0 : rounded);
  return text;
}

std::unique_ptr<Stage> RulesStage::fromSettings(Settings& settings, StageContext& context) {
  Policy policy;
  auto paths = settings.strings("paths");
  if (!paths || paths->empty()) {
    settings.fail("paths", "the rules stage needs `paths`: rule files or folders of *.cf files");
    return nullptr;
  }
  // Relative paths are read from the configuration file's folder, so a config and its rules
  // can move together.
  std::filesystem::path base = std::filesystem::path(context.config().source).parent_path();
  for (std::string& path : *paths)
    if (std::filesystem::path(path).is_relative() && !base.empty()) path = (base / path).string();
  // Settings::number refuses what is not a finite number.
  if (auto tag = settings.number("tag_score")) policy.tag_score = *tag;
  policy.tempfail_score = settings.number("tempfail_score");
  policy.reject_score = settings.number("reject_score");
  if (policy.tempfail_score && *policy.tempfail_score < policy.tag_score)
    settings.fail("tempfail_score", "must not be below tag_score (" + formatScore(policy.tag_score) + ")");
  if (policy.reject_score && *policy.reject_score < policy.tag_score)
    settings.fail("reject_score", "must not be below tag_score (" + formatScore(policy.tag_score) + ")");
  if (policy.reject_score && policy.tempfail_score && *policy.reject_score < *policy.tempfail_score)
    settings.fail("reject_score", "must not be below tempfail_score");
  if (auto text = settings.string("reject_text")) {
    if (auto reply = Reply::make(550, "5.7.1", *text); !reply) settings.fail("reject_text", reply.error());
    else policy.reject_text = *text;
  }
  if (auto prefix = settings.string("subject_prefix")) {
    if (prefix->size() > 64 || prefix->find_first_of("\r\n") != std::string::npos)
      settings.fail("subject_prefix", "must be one line of at most 64 characters");
    else policy.subject_prefix = *prefix;
  }
  if (auto bytes = settings.size("max_scan_bytes")) {
    if (*bytes < 1024 || *bytes > 64 * 1024 * 1024) settings.fail("max_scan_bytes", "must be between 1KiB and 64MiB");
    else policy.max_scan_bytes = *bytes;
  }
  if (auto budget = settings.duration("scan_budget")) {
    if (*budget < std::chrono::milliseconds(1) || *budget > max_scan_budget)
      settings.fail("scan_budget", "must be between 1ms and 10m");
    else policy.scan_budget = *budget;
  }
  if (!settings.ok()) return nullptr;
  auto loaded = rules::RuleSet::load(*paths);
  if (!loaded) {
    std::string text;
    for (const auto& problem : loaded.error()) text += (text.empty() ? "" : "; ") + problem.str();
    settings.fail("paths", "the rules do not load: " + text);
    return nullptr;
  }
  return std::make_unique<RulesStage>(std::move(*loaded), std::move(policy));
}

Step RulesStage::check(const StageInput& input) const {
  if (!input.message) return Verdict::proceed("no message");
  rules::Envelope envelope;
  if (input.sender) envelope.mail_from = input.sender->address();
  for (const auto& recipient : input.recipients) envelope.rcpt_to.push_back(recipient.address());
  envelope.client_ip = input.client_ip;
  envelope.helo = input.helo;
  return Job([rules = rules_, policy = policy_, message = input.message,
              envelope = std::move(envelope)](std::stop_token stop) mutable {
    auto text = message->readPrefix(policy.max_scan_bytes);
    if (!text) return Verdict::tempFail(replies::cannotReadMessage(), "reading the message: " + text.error());
    // A message cut at the bound is cut after its last whole line.
    if (message->size() > policy.max_scan_bytes && text->rfind('\n') != std::string::npos)
      text->resize(text->rfind('\n') + 1);
    rules::MessageView view = rules::MessageView::parse(*text, std::move(envelope));
    rules::ScanResult scan = rules->scan(view, {policy.scan_budget, std::move(stop)});
    Verdict verdict = decide(scan, policy, receivedSubject(view));
    if (message->size() > policy.max_scan_bytes)
      verdict.details.emplace_back("scanned_bytes", text->size());
    return verdict;
  });
}

Verdict RulesStage::decide(const rules::ScanResult& scan, const Policy& policy, const std::optional<std::string>& subject) {
  std::string score = formatScore(scan.score);
  std::string tests;
  for (const auto& hit : scan.hits) tests += (tests.empty() ? "" : ",") + hit.name;
  std::string reason = "score " + score + (tests.empty() ? "" : " (" + tests + ")");
  if (scan.stopped != rules::ScanBudget::Stop::None)
    reason += "; scan cut short (" + std::string(stopName(scan.stopped)) + "), " + std::to_string(scan.rules_not_run) +
              " rules not run";
  Verdict verdict;
  if (policy.reject_score && scan.score >= *policy.reject_score) {
    verdict = Verdict::reject(Reply::of(550, "5.7.1", policy.reject_text), reason);
  } else if (policy.tempfail_score && scan.score >= *policy.tempfail_score) {
    verdict = Verdict::tempFail(Reply::of(451, "4.7.1", "Message deferred as possible spam, try again later"), reason);
  } else {
    bool spam = scan.score >= policy.tag_score;
    verdict = spam ? Verdict::tag({}, scan.score, reason) : Verdict::proceed(reason);
    verdict.headers.push_back({"X-Spam-Score", score});
    verdict.headers.push_back({"X-Spam-Status", statusValue(spam, scan.score, policy.tag_score, scan.hits)});
    if (spam) verdict.headers.push_back({"X-Spam-Flag", "YES"});
    if (spam && !policy.subject_prefix.empty() && subject)
      verdict.headers.push_back({"Subject", policy.subject_prefix + " " + *subject, true});
  }
  // Whatever the verdict (and in shadow mode too): no X-Spam-* field from outside passes, only
  // ours. Readers take any of them (X-Spam-Level, X-Spam-Report, ...) for this gateway's word, not
  // only the three it writes. An empty value only removes; the "*" stands for any name so begun.
  verdict.headers.push_back({"X-Spam-*", "", true});
  verdict.score = scan.score;  // logged for every verdict, not only a tag
  verdict.scored = true;
  verdict.details = {{"tag_score", policy.tag_score}};
  std::vector<Details> hits;
  for (const auto& hit : scan.hits)
    hits.push_back({{"rule", hit.name}, {"score", hit.score}, {"description", hit.description}});
  verdict.detail_lists.emplace_back("hits", std::move(hits));
  // Rules whose answer is unknown (they count as not hit): the log says which and why.
  if (scan.stopped != rules::ScanBudget::Stop::None) {
    verdict.details.emplace_back("scan_stopped", stopName(scan.stopped));
    verdict.details.emplace_back("rules_not_run", scan.rules_not_run);
  }
  if (!scan.cut_short.empty()) {
    std::vector<Details> cut;
    for (const auto& rule : scan.cut_short) cut.push_back({{"rule", rule.name}, {"why", rule.why}});
    verdict.detail_lists.emplace_back("cut_short", std::move(cut));
  }
  return verdict;
}

}  // namespace mailgate
