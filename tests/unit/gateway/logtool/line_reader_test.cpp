#include "gateway/logtool/line_reader.h"

#include <boost/test/unit_test.hpp>
#include <zlib.h>

#include <string>
#include <vector>

#include "../../temp_directory.h"
#include "gateway/logtool/log_inputs.h"

namespace mailgate::logtool {
namespace {

std::string gzipped(const std::string& text) {
  z_stream stream{};
  BOOST_REQUIRE(deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&stream, text.size()) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  stream.avail_in = static_cast<uInt>(text.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  BOOST_REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

struct Read {
  std::vector<std::string> lines;
  std::string error;
  std::size_t oversized = 0;
};

Read readAll(const std::string& path) {
  Read result;
  auto log = OpenLog::open(path);
  BOOST_REQUIRE(log.has_value());
  while (true) {
    auto next = log->lines->next();
    if (!next) {
      result.error = next.error();
      break;
    }
    if (!*next) {
      if (auto rest = log->lines->unterminated()) result.lines.emplace_back(*rest);
      break;
    }
    result.lines.emplace_back(**next);
  }
  result.oversized = log->lines->oversized();
  return result;
}

BOOST_AUTO_TEST_SUITE(logtool_line_reader)

BOOST_AUTO_TEST_CASE(plain_and_gzip_read_the_same) {
  mailgate::test::TempDirectory folder;
  std::string text;
  for (int i = 0; i < 50000; ++i) text += "{\"n\":" + std::to_string(i) + "}\n";  // several blocks
  text += "last line without newline";
  for (const auto& path : {folder.write("plain.jsonl", text), folder.write("rotated.gz", gzipped(text)),
                           folder.write("rotated-no-suffix", gzipped(text))}) {
    auto read = readAll(path);
    BOOST_TEST(read.error.empty(), path);
    BOOST_REQUIRE(read.lines.size() == 50001u);
    BOOST_TEST(read.lines[0] == "{\"n\":0}");
    BOOST_TEST(read.lines[49999] == "{\"n\":49999}");
    BOOST_TEST(read.lines[50000] == "last line without newline");
  }
}

BOOST_AUTO_TEST_CASE(concatenated_gzip_members_are_one_log) {
  mailgate::test::TempDirectory folder;
  auto read = readAll(folder.write("two.gz", gzipped("a\nb\n") + gzipped("c\n")));
  BOOST_TEST(read.error.empty());
  BOOST_TEST(read.lines == (std::vector<std::string>{"a", "b", "c"}));
}

BOOST_AUTO_TEST_CASE(a_cut_gzip_file_is_an_error_after_what_it_held) {
  mailgate::test::TempDirectory folder;
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "line " + std::to_string(i) + "\n";
  std::string compressed = gzipped(text);
  auto read = readAll(folder.write("cut.gz", compressed.substr(0, compressed.size() - 20)));
  BOOST_TEST(read.error.find("cut short") != std::string::npos);
  auto garbage = readAll(folder.write("garbage.gz", compressed.substr(0, 10) + std::string(100, 'x')));
  BOOST_TEST(!garbage.error.empty());
}

BOOST_AUTO_TEST_CASE(an_endless_line_is_skipped_not_held) {
  mailgate::test::TempDirectory folder;
  // One just over the bound (its end is in sight when the bound is reached), one far over it
  // (dropped while it is read), one that never ends.
  std::string text = "first\n" + std::string(LineReader::max_line_octets + 10, 'x') + "\nafter\n" +
                     std::string(2 * LineReader::max_line_octets, 'y') + "\nlast\n" +
                     std::string(LineReader::max_line_octets + 1, 'z');
  auto read = readAll(folder.write("long.jsonl", text));
  BOOST_TEST(read.lines == (std::vector<std::string>{"first", "after", "last"}));
  BOOST_TEST(read.oversized == 3u);
}

BOOST_AUTO_TEST_CASE(files_sort_by_their_first_record) {
  mailgate::test::TempDirectory folder;
  std::string older = folder.write("decisions.jsonl.2.gz", gzipped("not json\n{\"type\":\"x\",\"time\":\"2026-12-05T10:00:00.000Z\"}\n"));
  std::string old = folder.write("decisions.jsonl.1", "{\"type\":\"x\",\"time\":\"2026-12-06T10:00:00.000Z\"}\n");
  std::string current = folder.write("decisions.jsonl", "{\"type\":\"x\",\"time\":\"2026-12-07T10:00:00.000Z\"}");
  std::string empty = folder.write("empty.jsonl", "");
  // A file with no record yet (a log just rotated) is taken for the newest.
  BOOST_TEST(inTimeOrder({current, "-", empty, old, older}) == (std::vector<std::string>{older, old, current, empty, "-"}));
  folder.write("decisions.jsonl.lock", "");
  folder.write("decisions.jsonl-20261201.gz", "");
  folder.write("decisions.jsonl.bak", "");
  BOOST_TEST(withRotatedFiles(current) ==
             (std::vector<std::string>{folder.path() + "/decisions.jsonl-20261201.gz", old, older, current}));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
