#include "gateway/logtool/table_writer.h"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <sstream>
#include <vector>

#include "sample_records.h"

namespace mailgate::logtool {
namespace {

// The table TableWriter prints for the lines, split into rows.
std::vector<std::string> table(std::initializer_list<std::string_view> lines, bool wide) {
  char* text = nullptr;
  std::size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  {
    TableWriter writer(out, wide);
    test::PaddedReader reader;
    for (auto line : lines) {
      const LogRecord* record = reader.read(line);
      BOOST_REQUIRE(record != nullptr);
      writer.add(tableRow(*record, decisionOf(*record), wide));
    }
    writer.flush();
  }
  std::fclose(out);
  std::vector<std::string> rows;
  std::istringstream stream(std::string(text, size));
  std::free(text);
  for (std::string row; std::getline(stream, row);) rows.push_back(row);
  return rows;
}

BOOST_AUTO_TEST_SUITE(logtool_table_writer)

BOOST_AUTO_TEST_CASE(columns_line_up) {
  auto rows = table({test::tagged_line, test::rejected_line, test::command_line}, false);
  BOOST_REQUIRE(rows.size() == 4u);
  BOOST_TEST(rows[0].starts_with("TIME                 CLIENT"));
  // Every column starts where its title does.
  for (const char* title : {"CLIENT", "SENDER", "RECIPIENTS", "ACTION", "REPLY", "STAGE", "REASON"}) {
    std::size_t column = rows[0].find(title);
    for (std::size_t i = 1; i < rows.size(); ++i) {
      BOOST_TEST(rows[i][column - 1] == ' ', title << " row " << i);
      BOOST_TEST(rows[i][column - 2] == ' ', title << " row " << i);
    }
  }
  BOOST_TEST(rows[1].starts_with("2026-12-07 14:05:09  192.0.2.7 "));
  BOOST_TEST(rows[1].find("Alice@Example.org +1") != std::string::npos);
  BOOST_TEST(rows[1].find("rules") != std::string::npos);
  BOOST_TEST(rows[2].find("  <>  ") != std::string::npos);  // the null sender
  BOOST_TEST(rows[3].find("smtp") != std::string::npos);
  BOOST_TEST(rows[3].find("command FOO") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(long_fields_are_cut_unless_wide) {
  std::string long_reason(100, 'r');
  std::string line = R"({"type":"transaction","time":"2026-12-07T14:00:00.000Z","action":"reject","reply":"550 5.7.1 )" +
                     std::string(80, 'x') + R"(","sender":")" + std::string(50, 's') + R"(@a.example","stages":[{"stage":"rules","verdict":"reject","reason":")" +
                     long_reason + R"("}],"recipients":[{"address":")" + std::string(40, 'q') + R"(@b.example"},{"address":"z@b.example"}]})";
  auto cut = table({line}, false);
  BOOST_REQUIRE(cut.size() == 2u);
  BOOST_TEST(cut[1].find(long_reason) == std::string::npos);
  BOOST_TEST(cut[1].find(std::string(59, 'r') + "…") != std::string::npos);
  BOOST_TEST(cut[1].find("… +1") != std::string::npos);  // the count of recipients survives the cut
  BOOST_TEST(cut[1].find(std::string(50, 's')) == std::string::npos);
  auto wide = table({line}, true);
  BOOST_TEST(wide[1].find(long_reason) != std::string::npos);
  BOOST_TEST(wide[1].find(std::string(50, 's') + "@a.example") != std::string::npos);
  BOOST_TEST(wide[1].find(std::string(40, 'q') + "@b.example +1") != std::string::npos);
  BOOST_TEST(wide[1].find("…") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(truncation_counts_characters_not_octets) {
  BOOST_TEST(displayWidth("größe") == 5u);
  BOOST_TEST(truncated("größe", 5) == "größe");
  BOOST_TEST(truncated("größer", 5) == "größ…");
  BOOST_TEST(truncated("abc", 1) == "…");
}

BOOST_AUTO_TEST_CASE(control_characters_do_not_break_rows) {
  auto rows = table({R"({"type":"command","action":"reject","reply":"500 a\nb\tc","command":"X"})"}, false);
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows[1].find("500 a b c") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(nothing_added_prints_nothing) {
  BOOST_TEST(table({}, false).empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
