#pragma once
// Config text to Config for the tests that build on a parsed configuration.

#include <boost/test/unit_test.hpp>

#include <string>

#include "gateway/config/config.h"

namespace mailgate::test {

// The config the text gives; the test stops, with the loader's errors said, when it gives none.
inline Config loadConfigText(const std::string& text) {
  auto config = parseConfig(text, "test.toml");
  if (!config)
    for (const auto& error : config.error()) BOOST_TEST_MESSAGE(error.text());
  BOOST_REQUIRE(config.has_value());
  return std::move(*config);
}

}  // namespace mailgate::test
