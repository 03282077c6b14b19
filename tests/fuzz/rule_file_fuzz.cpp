// libFuzzer target for the rule-file reader and the rule set built from it (tests/fuzz/README.md).
// The input is a rule file's text. It is written to fuzz.cf in a private temporary folder (beside
// other.cf, a small valid file, so that `include other.cf` has something to read), read with
// RuleFileReader, then loaded with RuleSet::load and, when it loads, used to scan a fixed
// message. Includes of absolute paths or of "..", which would read the machine's files, are not
// followed: such inputs are skipped. Findings, besides crashes and sanitizer reports:
//  - a statement not from a line of the file, or not as the reader promises (lower-case keyword
//    without '-' or blanks, trimmed one-line value);
//  - the statements of the file larger than the file;
//  - a problem (error, skipped line) without its file, or on a line the file does not have;
//  - a scan whose score is not a number, or whose hits are unsorted or name sub-rules (__NAME).

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gateway/util/ascii.h"
#include "rules/message_view.h"
#include "rules/rule_file_reader.h"
#include "rules/rule_set.h"
#include "tests/fuzz/fuzz_support.h"

namespace mailgate::rules {
namespace {

using fuzz::require;

std::string folder;
std::string file_path;

constexpr std::string_view other_file =
    "header MG_OTHER Subject =~ /offer/i\n"
    "score MG_OTHER 1.5\n";

constexpr std::string_view scanned_message =
    "From: Prize Office <winner@lottery.example>\r\n"
    "To: you@example.org\r\n"
    "Subject: =?utf-8?B?WW91IHdvbiDigqwxLDAwMCwwMDA=?= special offer\r\n"
    "Message-ID: <1@lottery.example>\r\n"
    "Content-Type: multipart/alternative; boundary=b\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Claim your prize at http://lottery.example/claim today. Dear beneficiary, next of kin.\r\n"
    "--b\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>Click <a href=\"http://evil.example/x?u=http://bank.example\">bank.example</a></p>\r\n"
    "--b--\r\n";

void writeFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  require(static_cast<bool>(out), "harness: cannot write the rule file");
}

unsigned lineCount(std::string_view text) {
  unsigned lines = static_cast<unsigned>(std::count(text.begin(), text.end(), '\n'));
  return text.empty() || text.back() == '\n' ? lines : lines + 1;
}

// An include the reader would follow out of the folder.
bool includesOutside(std::string_view text) {
  std::size_t at = 0;
  while ((at = text.find("nclude", at)) != std::string_view::npos) {
    std::size_t end = text.find('\n', at);
    std::string_view rest = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (rest.find('/') != std::string_view::npos || rest.find("..") != std::string_view::npos) return true;
    at += 6;
  }
  return false;
}

void checkProblems(const std::vector<Problem>& problems, unsigned lines) {
  for (const Problem& problem : problems) {
    require(!problem.file.empty(), "a problem without its file", problem.str());
    require(problem.line >= 0, "a problem on a negative line", problem.str());
    if (problem.file == file_path) require(static_cast<unsigned>(problem.line) <= lines, "a problem past the last line", problem.str());
    require(!problem.text.empty(), "a problem without a text", problem.str());
  }
}

}  // namespace
}  // namespace mailgate::rules

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace mailgate::rules;
  char name[] = "/tmp/mailgate-rule-fuzz-XXXXXX";
  if (mkdtemp(name) == nullptr) std::abort();
  folder = name;
  file_path = folder + "/fuzz.cf";
  writeFile(folder + "/other.cf", other_file);
  // The folder is removed at exit; a crash leaves it, with the input that caused it inside.
  std::atexit([] {
    unlink(file_path.c_str());
    unlink((folder + "/other.cf").c_str());
    rmdir(folder.c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate::rules;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (includesOutside(text)) return -1;  // libFuzzer keeps no such input in the corpus
  writeFile(file_path, text);
  unsigned lines = lineCount(text);

  LintReport report;
  RuleFileReader reader(report);
  std::vector<Statement> statements = reader.read({file_path});
  std::size_t own_octets = 0;
  for (const Statement& statement : statements) {
    std::string where = statement.file + ":" + std::to_string(statement.line) + ": " + statement.keyword;
    require(statement.file == file_path || statement.file == folder + "/other.cf", "a statement from no file read", where);
    require(statement.line >= 1, "a statement on line 0", where);
    if (statement.file == file_path) {
      require(static_cast<unsigned>(statement.line) <= lines, "a statement past the last line", where);
      own_octets += statement.keyword.size() + statement.value.size();
    }
    require(!statement.keyword.empty(), "an empty keyword", where);
    for (char c : statement.keyword) {
      require(!(c >= 'A' && c <= 'Z') && c != '-', "keyword not lower case with '_'", where);
      require(!mailgate::isAsciiSpace(c), "blank in a keyword", where);
    }
    require(statement.value.find('\n') == std::string::npos, "a value over several lines", where);
    require(statement.value.empty() || (!mailgate::isAsciiSpace(statement.value.front()) &&
                                         !mailgate::isAsciiSpace(statement.value.back())),
            "a value not trimmed", where);
  }
  require(own_octets <= size, "statements larger than the file");
  checkProblems(report.errors, lines);
  checkProblems(report.skipped, lines);

  static const MessageView message = MessageView::parse(scanned_message);
  LintReport load_report;
  auto loaded = RuleSet::load({file_path}, &load_report);
  checkProblems(load_report.errors, lines);
  checkProblems(load_report.skipped, lines);
  checkProblems(load_report.never_match, lines);
  if (!loaded) {
    require(!loaded.error().empty(), "a rule set refused without a problem");
    checkProblems(loaded.error(), lines);
    return 0;
  }
  ScanResult result = (*loaded)->scan(message);
  require(std::isfinite(result.score), "score not a finite number");
  for (std::size_t i = 0; i < result.hits.size(); ++i) {
    require(!result.hits[i].name.starts_with("__"), "a sub-rule listed as a hit", result.hits[i].name);
    if (i > 0) require(result.hits[i - 1].name < result.hits[i].name, "hits not sorted by name, or twice");
  }
  return 0;
}
