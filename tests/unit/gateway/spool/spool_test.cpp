#include <signal.h>
#include <sys/resource.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>

#include "gateway/spool/spool.h"
#include "tests/unit/temp_directory.h"

namespace mailgate {

namespace {

// A fresh directory per test, so that "nothing is left in the spool directory" can be checked.
using SpoolDirectory = test::TempDirectory;

// Varies with the position, so that a piece read back from the wrong offset does not match.
char patternAt(uint64_t index) { return static_cast<char>((index % 251) ^ ((index >> 12) & 0xff)); }

std::string pattern(uint64_t from, std::size_t length) {
  std::string bytes(length, '\0');
  for (std::size_t i = 0; i < length; ++i) bytes[i] = patternAt(from + i);
  return bytes;
}

// An odd chunk size, so that reads do not line up with the appends or the memory limit.
std::string readAll(const Spool& spool) {
  std::string content;
  char buffer[1000];
  for (;;) {
    auto got = spool.read(content.size(), buffer, sizeof buffer);
    BOOST_REQUIRE(got.has_value());
    if (*got == 0) return content;
    content.append(buffer, *got);
  }
}

std::string readAt(const Spool& spool, uint64_t offset, std::size_t length) {
  std::string bytes(length, '\0');
  auto got = spool.read(offset, bytes.data(), length);
  BOOST_REQUIRE(got.has_value());
  bytes.resize(*got);
  return bytes;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spool)

BOOST_FIXTURE_TEST_CASE(small_content_stays_in_memory, SpoolDirectory) {
  Spool spool(path(), 100);
  BOOST_TEST(spool.append("Subject: hi\r\n\r\n").has_value());
  BOOST_TEST(spool.append(std::string(85, 'x')).has_value());  // exactly the limit
  BOOST_TEST(!spool.onDisk());
  BOOST_TEST(spool.size() == 100u);
  BOOST_TEST(spool.memory() == "Subject: hi\r\n\r\n" + std::string(85, 'x'));
  BOOST_TEST(readAll(spool) == spool.memory());
}

BOOST_FIXTURE_TEST_CASE(crossing_the_limit_moves_to_disk, SpoolDirectory) {
  Spool spool(path(), 100);
  BOOST_TEST(spool.append(pattern(0, 60)).has_value());
  BOOST_TEST(spool.append(pattern(60, 41)).has_value());
  BOOST_TEST(spool.onDisk());
  BOOST_TEST(spool.memory().empty());
  BOOST_TEST(spool.append(pattern(101, 7)).has_value());
  BOOST_TEST(spool.size() == 108u);
  BOOST_TEST(readAll(spool) == pattern(0, 108));
  BOOST_TEST(readAt(spool, 95, 10) == pattern(95, 10));  // across the point where it moved
}

BOOST_FIXTURE_TEST_CASE(twenty_mebibytes_in_small_pieces, SpoolDirectory) {
  constexpr uint64_t total = 20 * 1024 * 1024;
  constexpr std::size_t piece = 4096;
  Spool spool(path(), 1024 * 1024);
  for (uint64_t offset = 0; offset < total; offset += piece) {
    if (!spool.append(pattern(offset, piece))) BOOST_FAIL("append failed at " << offset);
  }
  BOOST_TEST(spool.onDisk());
  BOOST_TEST(spool.memory().empty());
  BOOST_TEST(spool.size() == total);

  // 64 KiB + 1: the reads straddle the appends' boundaries.
  std::string buffer(65537, '\0');
  uint64_t offset = 0;
  uint64_t mismatches = 0;
  for (;;) {
    auto got = spool.read(offset, buffer.data(), buffer.size());
    BOOST_REQUIRE(got.has_value());
    if (*got == 0) break;
    for (std::size_t i = 0; i < *got; ++i) mismatches += buffer[i] != patternAt(offset + i);
    offset += *got;
  }
  BOOST_TEST(offset == total);
  BOOST_TEST(mismatches == 0u);
}

BOOST_FIXTURE_TEST_CASE(reads_at_offsets, SpoolDirectory) {
  for (uint64_t limit : {uint64_t{1024}, uint64_t{10}}) {  // in memory, then on disk
    Spool spool(path(), limit);
    BOOST_TEST(spool.append(pattern(0, 300)).has_value());
    BOOST_TEST(spool.onDisk() == (limit < 300));
    BOOST_TEST(readAt(spool, 0, 10) == pattern(0, 10));
    BOOST_TEST(readAt(spool, 123, 77) == pattern(123, 77));
    BOOST_TEST(readAt(spool, 290, 50) == pattern(290, 10));  // only what there is
    BOOST_TEST(readAt(spool, 300, 50).empty());
    BOOST_TEST(readAt(spool, 1'000'000, 50).empty());
    BOOST_TEST(readAt(spool, 5, 0).empty());
  }
}

BOOST_FIXTURE_TEST_CASE(clear_then_reuse_in_memory, SpoolDirectory) {
  Spool spool(path(), 50);
  BOOST_TEST(spool.append(pattern(0, 80)).has_value());
  BOOST_TEST(spool.onDisk());
  spool.clear();
  BOOST_TEST(!spool.onDisk());
  BOOST_TEST(spool.size() == 0u);
  BOOST_TEST(readAt(spool, 0, 10).empty());
  BOOST_TEST(spool.append("second message").has_value());
  BOOST_TEST(!spool.onDisk());
  BOOST_TEST(spool.memory() == "second message");
}

BOOST_FIXTURE_TEST_CASE(missing_directory_fails_once_the_limit_is_passed, SpoolDirectory) {
  std::string missing = path() + "/does-not-exist";
  Spool spool(missing, 10);
  BOOST_TEST(spool.append("0123456789").has_value());  // memory needs no directory
  auto result = spool.append("x");
  BOOST_REQUIRE(!result.has_value());
  BOOST_TEST(result.error().find(missing) != std::string::npos, result.error());
  BOOST_TEST(result.error().find("No such file or directory") != std::string::npos, result.error());
  BOOST_TEST(!spool.onDisk());
  BOOST_TEST(spool.memory() == "0123456789");  // a failed append changes nothing
}

BOOST_FIXTURE_TEST_CASE(spool_file_has_no_name_in_the_directory, SpoolDirectory) {
  Spool spool(path(), 10);
  BOOST_TEST(spool.append(pattern(0, 5000)).has_value());
  BOOST_TEST(spool.onDisk());
  BOOST_TEST(empty());
}

BOOST_FIXTURE_TEST_CASE(moves_keep_the_content, SpoolDirectory) {
  Spool in_memory(path(), 100);
  BOOST_TEST(in_memory.append("short").has_value());
  Spool moved_memory(std::move(in_memory));
  BOOST_TEST(moved_memory.memory() == "short");

  Spool on_disk(path(), 10);
  BOOST_TEST(on_disk.append(pattern(0, 500)).has_value());
  Spool moved_disk(std::move(on_disk));
  BOOST_TEST(!on_disk.onDisk());  // NOLINT(bugprone-use-after-move): the source must give up the file
  BOOST_TEST(moved_disk.onDisk());
  BOOST_TEST(readAll(moved_disk) == pattern(0, 500));

  moved_memory = std::move(moved_disk);  // assignment drops what the target held
  BOOST_TEST(moved_memory.onDisk());
  BOOST_TEST(readAll(moved_memory) == pattern(0, 500));
}

// RLIMIT_FSIZE makes write fail part way (EFBIG) as a full disk would, without filling one.
BOOST_FIXTURE_TEST_CASE(write_error_is_reported_and_changes_nothing, SpoolDirectory) {
  Spool spool(path(), 10);
  BOOST_TEST(spool.append(pattern(0, 1000)).has_value());
  rlimit saved{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  auto previous_handler = ::signal(SIGXFSZ, SIG_IGN);  // else the process is killed
  BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  auto result = spool.append(pattern(1000, 200 * 1024));
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, previous_handler);

  BOOST_REQUIRE(!result.has_value());
  BOOST_TEST(result.error().find(path()) != std::string::npos, result.error());
  BOOST_TEST(result.error().find("File too large") != std::string::npos, result.error());
  BOOST_TEST(spool.size() == 1000u);
  // The half-written bytes are not content: the next append goes where the content ends.
  BOOST_TEST(spool.append(pattern(1000, 20)).has_value());
  BOOST_TEST(readAll(spool) == pattern(0, 1020));
}

BOOST_AUTO_TEST_CASE(read_prefix_is_bounded_and_can_stop_at_the_end_of_the_header) {
  SpoolDirectory directory;
  std::string header = "Subject: x\r\nFrom: a@b\r\n\r\n";
  std::string body(200 * 1024, 'b');
  for (uint64_t memory_limit : {uint64_t{1} << 30, uint64_t{1024}}) {  // in memory, then on disk
    Spool spool(directory.path(), memory_limit);
    BOOST_REQUIRE(spool.append(header + body));
    BOOST_TEST(spool.onDisk() == (memory_limit == 1024));
    auto all = spool.readPrefix(1 << 30);
    BOOST_REQUIRE(all);
    BOOST_TEST((*all == header + body));
    auto bounded = spool.readPrefix(1000);
    BOOST_REQUIRE(bounded);
    BOOST_TEST((*bounded == (header + body).substr(0, 1000)));
    auto head = spool.readPrefix(1 << 30, true);
    BOOST_REQUIRE(head);
    BOOST_TEST(head->starts_with(header));
    BOOST_TEST(head->size() < 64 * 1024u, "the body is not read: " << head->size());
  }
  // An empty line that straddles two reads is still found; no empty line: read to the bound.
  Spool straddling(directory.path(), 1 << 30);
  BOOST_REQUIRE(straddling.append(std::string(16 * 1024 - 2, 'h') + "\r\n\r\n" + body));
  BOOST_TEST(straddling.readPrefix(1 << 30, true)->size() < 64 * 1024u);
  Spool headless(directory.path(), 1 << 30);
  BOOST_REQUIRE(headless.append(body));
  BOOST_TEST(headless.readPrefix(100 * 1024, true)->size() == 100 * 1024u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
