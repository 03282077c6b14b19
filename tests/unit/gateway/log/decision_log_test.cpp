#include "gateway/log/decision_log.h"

#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../temp_directory.h"

namespace mailgate {
namespace {

using namespace std::chrono_literals;

// A record of about 1 KiB, so that tests reach the queue's bound with a few thousand of them.
nlohmann::json record(int writer, int sequence) {
  return {{"type", "transaction"}, {"writer", writer}, {"sequence", sequence}, {"padding", std::string(1000, 'x')}};
}

std::vector<nlohmann::json> parseLines(const std::string& text) {
  std::vector<nlohmann::json> records;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) records.push_back(nlohmann::json::parse(line));  // throws on a split line
  BOOST_REQUIRE(text.empty() || text.back() == '\n');
  return records;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A FIFO with its read end open but not read: the log behind it is stuck once the pipe is full,
// like standard output piped to a process that stopped reading.
class StuckFifo {
 public:
  explicit StuckFifo(const std::string& path) : path_(path) {
    if (::mkfifo(path.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed");
    read_fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (read_fd_ < 0) throw std::runtime_error("cannot open the FIFO for reading");
  }
  ~StuckFifo() { ::close(read_fd_); }
  const std::string& path() const { return path_; }

  // Reads until every writer closed the FIFO (in the background: a writer may need it to finish).
  std::future<std::string> readToEnd() {
    ::fcntl(read_fd_, F_SETFL, 0);
    return std::async(std::launch::async, [fd = read_fd_] {
      std::string text;
      char buffer[65536];
      ssize_t n;
      while ((n = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
      return text;
    });
  }

 private:
  std::string path_;
  int read_fd_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(decision_log)

BOOST_AUTO_TEST_CASE(records_from_many_threads_arrive_whole_and_in_order) {
  test::TempDirectory directory;
  std::string path = directory.path() + "/decisions.jsonl";
  constexpr int writers = 4;
  constexpr int per_writer = 1500;
  {
    auto log = DecisionLog::open(path);
    BOOST_REQUIRE(log);
    std::vector<std::thread> threads;
    for (int writer = 0; writer < writers; ++writer)
      threads.emplace_back([&, writer] {
        for (int sequence = 0; sequence < per_writer; ++sequence) (*log)->write(record(writer, sequence));
      });
    for (auto& thread : threads) thread.join();
    BOOST_TEST((*log)->dropped() == 0u);
  }  // the destructor writes what is still queued
  std::map<int, int> next;
  for (const auto& line : parseLines(readFile(path))) {
    int writer = line.at("writer");
    BOOST_TEST(line.at("sequence").get<int>() == next[writer]);
    ++next[writer];
  }
  for (int writer = 0; writer < writers; ++writer) BOOST_TEST(next[writer] == per_writer);
}

BOOST_AUTO_TEST_CASE(a_log_nobody_reads_never_blocks_a_writer_and_every_lost_record_is_counted) {
  test::TempDirectory directory;
  StuckFifo fifo(directory.path() + "/decisions.fifo");
  // Well past the queue's bound plus what the pipe holds.
  const int total = static_cast<int>(2 * DecisionLog::queue_limit_octets / 1024);
  std::future<std::string> read;
  uint64_t dropped = 0;
  {
    auto log = DecisionLog::open(fifo.path());
    BOOST_REQUIRE(log);
    auto writing = std::async(std::launch::async, [&] {
      for (int sequence = 0; sequence < total; ++sequence) (*log)->write(record(0, sequence));
    });
    bool finished = writing.wait_for(60s) == std::future_status::ready;
    read = fifo.readToEnd();  // lets a blocked writer finish either way
    BOOST_REQUIRE_MESSAGE(finished, "write() blocked on a log nobody reads");
    dropped = (*log)->dropped();
    BOOST_TEST(dropped > 0u);
    BOOST_TEST(dropped < static_cast<uint64_t>(total));
  }  // stop() writes what was queued now that it is read
  auto lines = parseLines(read.get());
  int written = 0;
  uint64_t reported = 0;
  int next = 0;
  for (const auto& line : lines) {
    if (line.at("type") == "log_overflow") {
      reported += line.at("dropped").get<uint64_t>();
      BOOST_TEST(line.at("dropped_total").get<uint64_t>() == reported);
      continue;
    }
    int sequence = line.at("sequence");
    BOOST_TEST(sequence >= next);  // in order; the gaps are the dropped records
    next = sequence + 1;
    ++written;
  }
  BOOST_TEST(reported == dropped);
  BOOST_TEST(static_cast<uint64_t>(written) + reported == static_cast<uint64_t>(total));
}

BOOST_AUTO_TEST_CASE(reopen_sends_later_records_to_the_new_file_and_loses_none) {
  test::TempDirectory directory;
  std::string path = directory.path() + "/decisions.jsonl";
  std::string rotated = path + ".1";
  constexpr int before = 500;
  constexpr int after = 500;
  {
    auto log = DecisionLog::open(path);
    BOOST_REQUIRE(log);
    for (int sequence = 0; sequence < before; ++sequence) (*log)->write(record(0, sequence));
    std::filesystem::rename(path, rotated);  // as logrotate does, before it signals
    (*log)->reopen();
    // Records written once the writer opened the new file go there; until then they may still
    // go to the old one, and either way each must be in exactly one of them.
    int sequence = before;
    while (!std::filesystem::exists(path)) (*log)->write(record(0, sequence++));
    for (int i = 0; i < after; ++i) (*log)->write(record(0, sequence++));
    BOOST_TEST((*log)->path() == path);
  }
  auto old_records = parseLines(readFile(rotated));
  auto new_records = parseLines(readFile(path));
  BOOST_REQUIRE(old_records.size() >= static_cast<std::size_t>(before));
  BOOST_REQUIRE(new_records.size() >= static_cast<std::size_t>(after));
  int expected = 0;
  for (const auto* records : {&old_records, &new_records})
    for (const auto& line : *records) BOOST_TEST(line.at("sequence").get<int>() == expected++);
}

BOOST_AUTO_TEST_CASE(reopen_that_fails_keeps_the_old_file) {
  test::TempDirectory directory;
  std::string path = directory.path() + "/decisions.jsonl";
  {
    auto log = DecisionLog::open(path);
    BOOST_REQUIRE(log);
    (*log)->write(record(0, 0));
    (*log)->reopen(directory.path() + "/no-such-folder/decisions.jsonl");
    (*log)->write(record(0, 1));
  }
  auto records = parseLines(readFile(path));
  BOOST_REQUIRE_EQUAL(records.size(), 2u);
  BOOST_TEST(records[1].at("sequence").get<int>() == 1);
}

BOOST_AUTO_TEST_CASE(stop_writes_what_is_queued_and_counts_later_records) {
  test::TempDirectory directory;
  std::string path = directory.path() + "/decisions.jsonl";
  auto log = DecisionLog::open(path);
  BOOST_REQUIRE(log);
  for (int sequence = 0; sequence < 2000; ++sequence) (*log)->write(record(0, sequence));
  (*log)->stop(DecisionLog::exit_drain_bound);
  BOOST_TEST(parseLines(readFile(path)).size() == 2000u);
  (*log)->write(record(0, 2000));
  BOOST_TEST((*log)->dropped() == 1u);
}

BOOST_AUTO_TEST_CASE(stop_on_a_stuck_log_returns_and_counts_what_it_abandons) {
  test::TempDirectory directory;
  StuckFifo fifo(directory.path() + "/decisions.fifo");
  auto log = DecisionLog::open(fifo.path());
  BOOST_REQUIRE(log);
  constexpr int total = 2000;  // 2 MB: the pipe takes 64 KiB of it
  for (int sequence = 0; sequence < total; ++sequence) (*log)->write(record(0, sequence));
  (*log)->stop(100ms);
  uint64_t dropped = (*log)->dropped();
  BOOST_TEST(dropped > 0u);
  log->reset();
  // The abandoned writer finishes the line it was writing once the FIFO is read, then ends.
  auto lines = parseLines(fifo.readToEnd().get());
  BOOST_TEST(lines.size() + dropped >= static_cast<std::size_t>(total));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
