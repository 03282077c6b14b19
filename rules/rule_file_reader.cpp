#include "rules/rule_file_reader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>

#include "rules/meta_expression.h"
#include "gateway/util/ascii.h"

namespace mailgate::rules {
namespace {

constexpr double emulated_version = 4.000000;       // SpamAssassin 4.0's rule syntax
constexpr double emulated_perl_version = 5.036000;  // Debian 12's perl, as `if` lines expect it

// Parser.pm: s/(?<!\\)#.*$//; s/\\#/#/g — '#' starts a comment unless escaped.
std::string withoutComment(std::string_view line) {
  std::string out;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#') {
      if (i > 0 && line[i - 1] == '\\') {
        out.back() = '#';
        continue;
      }
      break;
    }
    out += line[i];
  }
  return out;
}

struct Condition {
  bool value = false;
  bool unsupported = false;  // false because of something mailgate does not have
  std::string why;           // when it could not be evaluated
};

Condition evaluate(const std::string& text) {
  Condition condition;
  auto expression = MetaExpression::parse(text);
  if (!expression) {
    condition.why = expression.error();
    return condition;
  }
  auto name = [&](const std::string& word) -> std::optional<double> {
    if (word == "version") return emulated_version;
    if (word == "perl_version") return emulated_perl_version;
    if (word == "local_tests_only") return 1.0;  // no network tests run here
    condition.why = "unknown name '" + word + "'";
    return std::nullopt;
  };
  auto call = [&](const MetaExpression::Call& call) -> std::optional<double> {
    bool answer = false;
    if (call.function == "plugin") {
      answer = RuleFileReader::hasPlugin(call.argument);
    } else if (call.function == "can" || call.function == "has") {
      const std::string& method = call.argument;
      constexpr std::string_view conf = "Mail::SpamAssassin::Conf::";
      answer = method.starts_with(conf) &&
               ((method.substr(conf.size()).starts_with("feature_") && method != std::string(conf) + "feature_capture_rules") ||
                method.substr(conf.size()).starts_with("perl_min_version_"));
    } else {
      condition.why = "unknown function " + call.function + "()";
      return std::nullopt;
    }
    if (!answer) condition.unsupported = true;
    return answer ? 1.0 : 0.0;
  };
  auto value = expression->evaluate(name, call);
  if (!value) {
    if (condition.why.empty()) condition.why = "cannot be evaluated";
    return condition;
  }
  condition.value = *value != 0;
  return condition;
}

struct Block {
  bool skip_before;  // skipping state outside this block
  int line;
};

}  // namespace

bool RuleFileReader::hasPlugin(std::string_view name) {
  // Built in: ReplaceTags (regex shorthands) and MIMEHeader (mimeheader rules).
  return name == "Mail::SpamAssassin::Plugin::ReplaceTags" || name == "Mail::SpamAssassin::Plugin::MIMEHeader";
}

void RuleFileReader::error(const std::string& file, int line, std::string text) {
  report_.errors.push_back({file, line, std::move(text)});
}

void RuleFileReader::skipped(const std::string& file, int line, std::string text) {
  report_.skipped.push_back({file, line, std::move(text)});
}

std::vector<Statement> RuleFileReader::read(const std::vector<std::string>& paths) {
  std::vector<Statement> statements;
  for (const std::string& path : paths) {
    std::error_code code;
    if (std::filesystem::is_directory(path, code)) {
      std::vector<std::string> files;
      for (const auto& entry : std::filesystem::directory_iterator(path, code)) {
        if (entry.path().extension() == ".cf" && !entry.is_directory()) files.push_back(entry.path().string());
      }
      if (code) {
        error(path, 0, "cannot read the folder: " + code.message());
        continue;
      }
      std::sort(files.begin(), files.end());
      for (const std::string& file : files) readFile(file, 0, statements);
    } else {
      readFile(path, 0, statements);
    }
  }
  return statements;
}

void RuleFileReader::readFile(const std::string& path, int depth, std::vector<Statement>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error(path, 0, std::string("cannot read: ") + std::strerror(errno));
    return;
  }
  std::vector<Block> blocks;
  bool skipping = false;
  std::string raw_line;
  int number = 0;
  while (std::getline(in, raw_line)) {
    ++number;
    if (!raw_line.empty() && raw_line.back() == '\r') raw_line.pop_back();
    std::string line = trimmed(withoutComment(raw_line));
    if (line.empty()) continue;
    // Parser.pm splits at /\s+/: any blank (form feed and vertical tab too) ends a word.
    auto [first, after_first] = splitFirstWord(line);
    // `lang xx ...`: a translation; only English is used (as with LANG=C).
    if (first == "lang" && !after_first.empty()) {
      auto [language, translated] = splitFirstWord(after_first);
      if (!language.starts_with("en")) continue;
      line = std::string(translated);
      if (line.empty()) continue;
      std::tie(first, after_first) = splitFirstWord(line);
    }
    std::string keyword(first);
    std::string value(after_first);
    for (char& c : keyword) c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

    if (keyword == "if" || keyword == "ifplugin") {
      if (value.empty()) {
        error(path, number, "'" + keyword + "' without a condition");
        continue;
      }
      blocks.push_back({skipping, number});
      if (skipping) continue;
      Condition condition = evaluate(keyword == "ifplugin" ? "plugin(" + value + ")" : value);
      if (!condition.value) {
        skipping = true;
        if (!condition.why.empty()) skipped(path, number, keyword + " " + value + ": " + condition.why + ", block skipped");
        else if (condition.unsupported) skipped(path, number, keyword + " " + value + ": not available here, block skipped");
      }
      continue;
    }
    if (keyword == "else") {
      if (!value.empty()) error(path, number, "'else' must stand alone");
      if (blocks.empty()) {
        error(path, number, "'else' without 'if'");
        continue;
      }
      // Parser.pm bug 7848: an else inside a skipped block stays skipped.
      skipping = blocks.back().skip_before ? true : !skipping;
      continue;
    }
    if (keyword == "endif") {
      if (!value.empty()) error(path, number, "'endif' must stand alone");
      if (blocks.empty()) {
        error(path, number, "'endif' without 'if'");
        continue;
      }
      skipping = blocks.back().skip_before;
      blocks.pop_back();
      continue;
    }
    if (skipping) continue;
    if (keyword == "include") {
      if (value.empty()) {
        error(path, number, "'include' without a file");
        continue;
      }
      std::filesystem::path target = value;
      if (target.is_relative()) target = std::filesystem::path(path).parent_path() / target;
      if (depth + 1 > max_include_depth) {
        error(path, number, "include nested more than " + std::to_string(max_include_depth) + " deep (a loop?)");
        continue;
      }
      std::error_code code;
      if (!std::filesystem::is_regular_file(target, code)) {
        error(path, number, "include: cannot read " + target.string());
        continue;
      }
      readFile(target.string(), depth + 1, out);
      continue;
    }
    // require_version: mailgate reads the syntax, whatever version the file was written for.
    if (keyword == "require_version") continue;
    out.push_back({std::move(keyword), std::move(value), path, number});
  }
  for (const Block& block : blocks) error(path, block.line, "'if' without 'endif'");
}

}  // namespace mailgate::rules
