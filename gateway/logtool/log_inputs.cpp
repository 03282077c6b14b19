#include "gateway/logtool/log_inputs.h"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "gateway/logtool/log_record.h"

namespace mailgate::logtool {
namespace {

// ".1", ".2.gz", "-20261207", "-20261207.gz", "-2026120714": a rotation suffix, not ".lock" or
// ".bak".
bool isRotationSuffix(std::string_view suffix) {
  if (suffix.size() < 2 || (suffix[0] != '.' && suffix[0] != '-')) return false;
  suffix.remove_prefix(1);
  if (suffix.ends_with(".gz")) suffix.remove_suffix(3);
  return !suffix.empty() && std::all_of(suffix.begin(), suffix.end(), [](char c) { return (c >= '0' && c <= '9') || c == '-'; });
}

}  // namespace

std::expected<OpenLog, std::string> OpenLog::open(const std::string& path) {
  auto stream = LogStream::open(path);
  if (!stream) return std::unexpected(stream.error());
  OpenLog log;
  log.stream = std::move(*stream);
  log.lines = std::make_unique<LineReader>(*log.stream);
  return log;
}

std::vector<std::string> withRotatedFiles(const std::string& path) {
  std::filesystem::path current(path);
  std::filesystem::path folder = current.parent_path().empty() ? "." : current.parent_path();
  std::string base = current.filename().string();
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    std::string name = entry.path().filename().string();
    if (name.size() > base.size() && name.starts_with(base) && isRotationSuffix(std::string_view(name).substr(base.size())) &&
        entry.is_regular_file(error))
      files.push_back((current.parent_path() / name).string());
  }
  std::sort(files.begin(), files.end());
  if (std::filesystem::exists(current, error)) files.push_back(path);
  return files;
}

std::optional<EpochMs> firstRecordTime(const std::string& path) {
  auto log = OpenLog::open(path);
  if (!log) return std::nullopt;
  RecordReader reader;
  // The first block is enough: a log whose first megabyte holds no readable time is no log.
  constexpr std::size_t lines_to_try = 1000;
  for (std::size_t i = 0; i < lines_to_try; ++i) {
    auto next = log->lines->next();
    if (!next) return std::nullopt;
    auto line = *next ? *next : log->lines->unterminated();
    if (!line) return std::nullopt;
    if (const LogRecord* record = reader.read(*line); record && record->time_ms) return record->time_ms;
  }
  return std::nullopt;
}

std::vector<std::string> inTimeOrder(std::vector<std::string> files) {
  if (files.size() < 2) return files;
  std::vector<std::pair<EpochMs, std::string>> keyed;
  for (auto& file : files) {
    // A file with no record yet is most likely the log just rotated, the newest: it goes after
    // the others, so that --follow follows it; standard input, unknown until read, comes last.
    EpochMs key = file == "-" ? std::numeric_limits<EpochMs>::max()
                              : firstRecordTime(file).value_or(std::numeric_limits<EpochMs>::max() - 1);
    keyed.emplace_back(key, std::move(file));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  files.clear();
  for (auto& [key, file] : keyed) files.push_back(std::move(file));
  return files;
}

}  // namespace mailgate::logtool
