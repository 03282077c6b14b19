#pragma once
// The decision log: one JSON object per line for every transaction, refused command and refused
// connection (design.md §3 "Logs"). Writers on every worker share one DecisionLog; each record is
// one write(2) of one line on an O_APPEND descriptor, so lines never interleave.

#include <expected>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace mailgate {

class DecisionLog {
 public:
  // "-" writes to standard output; anything else is a file opened for appending (created 0640).
  static std::expected<std::shared_ptr<DecisionLog>, std::string> open(const std::string& path);
  ~DecisionLog();
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

  // "2026-11-25T08:18:32.123Z"
  static std::string timestamp();

 private:
  DecisionLog(std::string path, int fd, bool owned) : path_(std::move(path)), fd_(fd), owned_(owned) {}
  std::string path_;
  int fd_;
  bool owned_;
  std::mutex mutex_;
};

}  // namespace mailgate
