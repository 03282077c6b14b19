#include "gateway/logtool/log_options.h"

#include <boost/test/unit_test.hpp>

#include "../../temp_directory.h"
#include "gateway/util/ascii.h"

namespace mailgate::logtool {
namespace {

std::string errorOf(const std::vector<std::string>& arguments) {
  auto options = parseLogArguments(arguments, 0);
  BOOST_REQUIRE_MESSAGE(!options.has_value(), "accepted what it should refuse");
  return options.error();
}

BOOST_AUTO_TEST_SUITE(logtool_log_options)

BOOST_AUTO_TEST_CASE(files_are_words_that_name_files) {
  mailgate::test::TempDirectory folder;
  std::string log = folder.write("decisions.jsonl", "");
  std::string rotated = folder.write("decisions.jsonl.1.gz", "");
  auto options = parseLogArguments({log, "viagra", rotated, "-", "--", log}, 0);
  BOOST_REQUIRE(options.has_value());
  BOOST_TEST(options->files == (std::vector<std::string>{log, rotated, "-"}));
  BOOST_REQUIRE(options->filter.words.size() == 2u);
  BOOST_TEST(options->filter.words[0].text() == "viagra");
  BOOST_TEST(options->filter.words[1].text() == mailgate::asciiLower(log));
}

BOOST_AUTO_TEST_CASE(a_missing_file_is_not_taken_for_a_word) {
  BOOST_TEST(errorOf({"/var/log/nowhere/decisions.jsonl"}).find("no such file") != std::string::npos);
  BOOST_TEST(errorOf({"decisions.jsonl.3.gz"}).find("no such file") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(modes_and_defaults) {
  auto plain = parseLogArguments({}, 0);
  BOOST_REQUIRE(plain.has_value());
  BOOST_TEST(!plain->json);
  BOOST_TEST(!plain->summary);
  BOOST_TEST(!plain->follow);
  BOOST_TEST(plain->top == 10u);
  auto options = parseLogArguments({"--summary", "--json", "--top", "3", "--wide", "--config", "x.toml"}, 0);
  BOOST_REQUIRE(options.has_value());
  BOOST_TEST(options->summary);
  BOOST_TEST(options->json);
  BOOST_TEST(options->wide);
  BOOST_TEST(options->top == 3u);
  BOOST_TEST(*options->config_path == "x.toml");
  auto follow = parseLogArguments({"-f"}, 0);
  BOOST_REQUIRE(follow.has_value());
  BOOST_TEST(follow->follow);
}

BOOST_AUTO_TEST_CASE(bad_arguments_say_what_is_wrong) {
  BOOST_TEST(errorOf({"--action", "bounce"}).find("bounce") != std::string::npos);
  BOOST_TEST(errorOf({"--since", "yesterday"}).find("--since") != std::string::npos);
  BOOST_TEST(errorOf({"--client", "10.0.0.0/33"}).find("--client") != std::string::npos);
  BOOST_TEST(errorOf({"--from", "@"}).find("--from") != std::string::npos);
  BOOST_TEST(errorOf({"--top", "0"}).find("--top") != std::string::npos);
  BOOST_TEST(errorOf({"--top", "many"}).find("--top") != std::string::npos);
  BOOST_TEST(errorOf({"--rule"}).find("needs a value") != std::string::npos);
  BOOST_TEST(errorOf({"--json=yes"}).find("takes no value") != std::string::npos);
  BOOST_TEST(errorOf({"--colour"}).find("unknown option") != std::string::npos);
  BOOST_TEST(errorOf({"--follow", "--summary"}).find("--follow") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace mailgate::logtool
