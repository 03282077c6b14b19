#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "filters/builtin_stages.h"
#include "tests/unit/config_text.h"

namespace mailgate {
namespace {

// A resolver that is never asked: building a pipeline sends no query.
constexpr std::string_view dns_table = "[dns]\nservers = [\"127.0.0.1:53\"]\n";  // lines 1-2

Config load(const std::string& text) { return test::loadConfigText(text); }

std::vector<ConfigError> buildErrors(const std::string& text) {
  Config config = load(text);
  auto pipeline = buildPipeline(config);
  BOOST_REQUIRE(!pipeline.has_value());
  return pipeline.error();
}

std::string stageTable(std::string_view type, std::string_view extra = "") {
  return "[[stage]]\ntype = \"" + std::string(type) + "\"\n" + std::string(extra);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(builtin_stages)

BOOST_AUTO_TEST_CASE(no_stage_table_keeps_the_default_size_limit_and_says_so) {
  for (std::string text : {std::string(), std::string(dns_table), std::string("stage = []\n")}) {
    BOOST_TEST_CONTEXT("config:\n" << text) {
      Config config = load(text);
      BOOST_TEST_REQUIRE(config.notices.size() == 1u);
      BOOST_TEST(config.notices[0] == "no [[stage]]: using the default size_limit of 25 MiB");
      auto pipeline = buildPipeline(config);
      BOOST_TEST_REQUIRE(pipeline.has_value());
      BOOST_TEST_REQUIRE((*pipeline)->stages().size() == 1u);
      BOOST_TEST((*pipeline)->stages()[0].stage->name() == "size_limit");
      BOOST_TEST((*pipeline)->maxMessageBytes().value_or(0) == 25u * 1024u * 1024u);
    }
  }
  // The same bound as the embedded default's own stage.
  auto embedded = buildPipeline(embeddedDefaultConfig());
  BOOST_TEST_REQUIRE(embedded.has_value());
  BOOST_TEST((*embedded)->maxMessageBytes().value_or(0) == 25u * 1024u * 1024u);
  BOOST_TEST(embeddedDefaultConfig().notices.empty());
}

BOOST_AUTO_TEST_CASE(stage_tables_replace_the_default_and_say_nothing) {
  Config config = load(stageTable("size_limit", "max_bytes = \"1MiB\"\n"));
  BOOST_TEST(config.notices.empty());
  auto pipeline = buildPipeline(config);
  BOOST_TEST_REQUIRE(pipeline.has_value());
  BOOST_TEST((*pipeline)->maxMessageBytes().value_or(0) == 1024u * 1024u);
}

BOOST_AUTO_TEST_CASE(dmarc_needs_spf_and_dkim_before_it) {
  struct Case {
    std::vector<std::string_view> order;
    std::string missing;
  };
  const std::vector<Case> cases = {
      {{"dmarc"}, "spf, dkim"},
      {{"spf", "dmarc"}, "dkim"},
      {{"dkim", "dmarc"}, "spf"},
      {{"dmarc", "spf", "dkim"}, "spf, dkim"},
      {{"spf", "dmarc", "dkim"}, "dkim"},
  };
  for (const Case& bad : cases) {
    std::string text(dns_table);
    unsigned line = 3, dmarc_line = 0;
    for (std::string_view type : bad.order) {
      if (type == "dmarc") dmarc_line = line + 1;  // its type = line
      text += stageTable(type);
      line += 2;
    }
    BOOST_TEST_CONTEXT("config:\n" << text) {
      auto errors = buildErrors(text);
      BOOST_TEST_REQUIRE(errors.size() == 1u);
      BOOST_TEST(errors[0].file == "test.toml");
      BOOST_TEST(errors[0].line == dmarc_line);
      BOOST_TEST(errors[0].key.ends_with("].type"));
      BOOST_TEST(errors[0].message.find("must come after the spf stage and the dkim stage") != std::string::npos,
                 errors[0].message);
      BOOST_TEST(errors[0].message.ends_with("missing before it: " + bad.missing), errors[0].message);
    }
  }
  auto ordered = buildPipeline(load(std::string(dns_table) + stageTable("spf") + stageTable("dkim") + stageTable("dmarc")));
  BOOST_TEST(ordered.has_value());
}

BOOST_AUTO_TEST_CASE(a_public_suffix_list_that_cannot_be_read_is_an_error) {
  for (std::string path : {"/nonexistent/public_suffix_list.dat", "/", "/dev/null"}) {
    std::string text = std::string(dns_table) + stageTable("spf") + stageTable("dkim") +
                       stageTable("dmarc", "public_suffix_list = \"" + path + "\"\n");
    BOOST_TEST_CONTEXT("public_suffix_list = " << path) {
      auto errors = buildErrors(text);
      BOOST_TEST_REQUIRE(errors.size() == 1u);
      BOOST_TEST(errors[0].key == "stage[2].public_suffix_list");
      BOOST_TEST(errors[0].line == 9u);
      BOOST_TEST(errors[0].message.find(path) != std::string::npos, errors[0].message);
      std::string why = path == "/dev/null" ? "is empty" : path == "/" ? "Is a directory" : "No such file or directory";
      BOOST_TEST(errors[0].message.find(why) != std::string::npos, errors[0].message);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
