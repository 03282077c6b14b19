// The value readers: parseSize, parseDuration, parseHostPort, the syntax checks behind them, and
// Settings' typed getters that apply them to TOML values (seen through a [[stage]] table).
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/config/settings_impl.h"

namespace mailgate {
namespace {

struct BadInput {
  std::string text;
  std::string message_part;  // the reason the message must give
};

// Joins lines with '\n', so that a test names the line of each value by its place in the list.
std::string lines(std::initializer_list<std::string_view> list) {
  std::string text;
  for (std::string_view line : list) text.append(line).append("\n");
  return text;
}

// The only way to a Settings outside the loader: the table of a [[stage]].
Settings& stageSettings(std::expected<Config, std::vector<ConfigError>>& config) {
  BOOST_REQUIRE(config.has_value());
  BOOST_REQUIRE(config->stages.size() == 1u);
  return *config->stages[0].settings;
}

std::string describe(const std::vector<ConfigError>& errors) {
  std::string text;
  for (const auto& error : errors) text += error.text() + "\n";
  return text;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config_units)

BOOST_AUTO_TEST_CASE(sizes_in_bytes_and_with_units_are_read) {
  struct Good {
    std::string text;
    uint64_t bytes;
  };
  const std::vector<Good> good = {
      {"0", 0},
      {"512", 512},
      {"1B", 1},
      {"7b", 7},
      {"1KB", 1000},
      {"2kb", 2000},
      {"25MB", 25'000'000},
      {"1GB", 1'000'000'000},
      {"1KiB", 1024},
      {"512KiB", 512 * 1024},
      {"25MiB", 25 * 1024 * 1024},
      {"25 MiB", 25 * 1024 * 1024},
      {"25mib", 25 * 1024 * 1024},
      {"25MIB", 25 * 1024 * 1024},
      {"1GiB", uint64_t{1} << 30},
      {"17179869183GiB", uint64_t{17179869183} << 30},
      {"18446744073709551615", UINT64_MAX},
  };
  for (const auto& [text, bytes] : good) {
    BOOST_TEST_CONTEXT("size " << text) {
      auto size = parseSize(text);
      BOOST_TEST_REQUIRE(size.has_value(), size.error());
      BOOST_TEST(*size == bytes);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_sizes_are_refused_with_a_reason) {
  const std::vector<BadInput> bad = {
      {"", "whole number"},
      {"-1", "negative"},
      {"-5MiB", "negative"},
      {"abc", "whole number"},
      {"MiB", "whole number"},
      {" 25MiB", "whole number"},
      {"25XB", "unknown unit \"XB\""},
      {"25 KiB ", "unknown unit"},
      {"25  MiB", "unknown unit"},
      {"25 ", "missing unit"},
      {"1.5MiB", "whole number"},
      {"0x10", "unknown unit"},
      {"18446744073709551616", "too large"},
      {"17179869184GiB", "too large"},
      {"18446744073709551615KB", "too large"},
  };
  for (const auto& [text, message_part] : bad) {
    BOOST_TEST_CONTEXT("size \"" << text << "\"") {
      auto size = parseSize(text);
      BOOST_TEST_REQUIRE(!size.has_value());
      BOOST_TEST(size.error().find(message_part) != std::string::npos, size.error());
      BOOST_TEST(size.error().find("\"" + text + "\"") != std::string::npos, "message quotes the input");
    }
  }
}

BOOST_AUTO_TEST_CASE(durations_in_seconds_and_with_units_are_read) {
  struct Good {
    std::string text;
    int64_t milliseconds;
  };
  const std::vector<Good> good = {
      {"0", 0},          {"30", 30'000},     {"250ms", 250},     {"30s", 30'000}, {"5m", 300'000},
      {"1h", 3'600'000}, {"1d", 86'400'000}, {"2 h", 7'200'000}, {"10S", 10'000}, {"0ms", 0},
  };
  for (const auto& [text, milliseconds] : good) {
    BOOST_TEST_CONTEXT("duration " << text) {
      auto duration = parseDuration(text);
      BOOST_TEST_REQUIRE(duration.has_value(), duration.error());
      BOOST_TEST(duration->count() == milliseconds);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_durations_are_refused_with_a_reason) {
  const std::vector<BadInput> bad = {
      {"", "whole number"},
      {"-1s", "negative"},
      {"5x", "unknown unit \"x\""},
      {"5 min", "unknown unit"},
      {"1.5s", "whole number"},
      {"s", "whole number"},
      {"1h30m", "unknown unit"},
      {"9223372036854775807s", "too large"},
      {"1000000000000d", "too large"},
      {"99999999999999999999", "too large"},
  };
  for (const auto& [text, message_part] : bad) {
    BOOST_TEST_CONTEXT("duration \"" << text << "\"") {
      auto duration = parseDuration(text);
      BOOST_TEST_REQUIRE(!duration.has_value());
      BOOST_TEST(duration.error().find(message_part) != std::string::npos, duration.error());
    }
  }
}

BOOST_AUTO_TEST_CASE(host_and_port_forms_are_read) {
  struct Good {
    std::string text;
    std::string host;
    uint16_t port;
  };
  const std::vector<Good> good = {
      {"127.0.0.1:25", "127.0.0.1", 25},
      {"0.0.0.0:25", "0.0.0.0", 25},
      {"127.0.0.1", "127.0.0.1", 2525},
      {"[::1]:2525", "::1", 2525},
      {"[::]:25", "::", 25},
      {"[::1]", "::1", 2525},
      {"[2001:db8::1]:65535", "2001:db8::1", 65535},
      {"::1", "::1", 2525},
      {"2001:db8::25", "2001:db8::25", 2525},
      // Without brackets every colon belongs to the address: this is the address ::1:25.
      {"::1:25", "::1:25", 2525},
      {"mail.example.org:25", "mail.example.org", 25},
      {"mail.example.org", "mail.example.org", 2525},
      {"localhost:1", "localhost", 1},
  };
  for (const auto& [text, host, port] : good) {
    BOOST_TEST_CONTEXT("address " << text) {
      auto parsed = parseHostPort(text, 2525);
      BOOST_TEST_REQUIRE(parsed.has_value(), parsed.error());
      BOOST_TEST(parsed->host == host);
      BOOST_TEST(parsed->port == port);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_host_and_port_forms_are_refused) {
  const std::vector<BadInput> bad = {
      {"", "missing host"},
      {":25", "missing host"},
      {"127.0.0.1:", "port"},
      {"127.0.0.1:0", "port"},
      {"127.0.0.1:65536", "port"},
      {"127.0.0.1:99999999", "port"},
      {"127.0.0.1:-1", "port"},
      {"127.0.0.1:2a", "port"},
      {"1.2.3.999:25", "not a valid IPv4 address"},
      {"1.2.3:25", "not a valid IPv4 address"},
      {"bad_host:25", "not a valid host name"},
      {"-host.example:25", "not a valid host name"},
      {"a..b:25", "not a valid host name"},
      {"[::1", "missing ']'"},
      {"[::1]25", "expected ':'"},
      {"[::1]:", "port"},
      {"[127.0.0.1]:25", "IPv6"},
      {"[]:25", "IPv6"},
      {"[mail.example.org]:25", "IPv6"},
      {"fe80::1::2", "brackets"},
      {"2001:db8::1:99999", "brackets"},
  };
  for (const auto& [text, message_part] : bad) {
    BOOST_TEST_CONTEXT("address \"" << text << "\"") {
      auto parsed = parseHostPort(text, 25);
      BOOST_TEST_REQUIRE(!parsed.has_value());
      BOOST_TEST(parsed.error().find(message_part) != std::string::npos, parsed.error());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_nul_inside_an_address_is_not_cut_off) {
  using namespace std::string_view_literals;
  BOOST_TEST(!parseHostPort("[::1\0junk]:25"sv, 25).has_value());
  BOOST_TEST(!parseHostPort("127.0.0.1\0:25"sv, 25).has_value());
  BOOST_TEST(!config_detail::isCidr("10.0.0.0\0junk/8"sv));
}

BOOST_AUTO_TEST_CASE(a_default_port_of_zero_makes_the_port_required) {
  BOOST_TEST(!parseHostPort("127.0.0.1", 0).has_value());
  BOOST_TEST(!parseHostPort("[::1]", 0).has_value());
  BOOST_TEST(parseHostPort("127.0.0.1:25", 0)->port == 25);
}

BOOST_AUTO_TEST_CASE(host_port_text_brackets_ipv6_only) {
  BOOST_TEST((HostPort{"1.2.3.4", 25}.text()) == "1.2.3.4:25");
  BOOST_TEST((HostPort{"::1", 25}.text()) == "[::1]:25");
  BOOST_TEST((HostPort{"mail.example.org", 2525}.text()) == "mail.example.org:2525");
  for (std::string text : {"127.0.0.1:25", "[::1]:2525", "[2001:db8::1]:25", "mx.example.org:25"})
    BOOST_TEST(parseHostPort(text, 1)->text() == text);
}

BOOST_AUTO_TEST_CASE(domain_names_follow_rfc_1035_and_1123) {
  using config_detail::isDomainName;
  std::string label63(63, 'a');
  BOOST_TEST(isDomainName("localhost"));
  BOOST_TEST(isDomainName("mx.example.org"));
  BOOST_TEST(isDomainName("MX-1.Example.ORG"));
  BOOST_TEST(isDomainName("3com.example"));
  BOOST_TEST(isDomainName(label63 + ".example"));
  BOOST_TEST(!isDomainName(""));
  BOOST_TEST(!isDomainName(label63 + "a.example"));
  BOOST_TEST(!isDomainName("example.org."));
  BOOST_TEST(!isDomainName(".example.org"));
  BOOST_TEST(!isDomainName("a..example"));
  BOOST_TEST(!isDomainName("-mx.example"));
  BOOST_TEST(!isDomainName("mx-.example"));
  BOOST_TEST(!isDomainName("mx_1.example"));
  BOOST_TEST(!isDomainName("mx example"));
  std::string name = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');  // 253
  BOOST_TEST(isDomainName(name));
  BOOST_TEST(!isDomainName(name + "b"));
}

BOOST_AUTO_TEST_CASE(cidr_blocks_are_checked_per_family) {
  using config_detail::isCidr;
  for (std::string good : {"127.0.0.0/8", "0.0.0.0/0", "10.0.0.1/32", "::1/128", "::/0", "2001:db8::/32"})
    BOOST_TEST(isCidr(good), good);
  for (std::string bad : {"10.0.0.0/33", "::1/129", "10.0.0.1", "10.0.0.0/", "10.0.0.0/8x", "/8",
                          "example.org/8", "10.0.0.0/-1", "10.0.0.0/0008", "[::1]/128"})
    BOOST_TEST(!isCidr(bad), bad);
}

BOOST_AUTO_TEST_CASE(stage_settings_read_values_and_report_unknown_keys_at_finish) {
  auto config = parseConfig(lines({
                                "[[stage]]",                                          // 1
                                "type = \"custom\"",                                  // 2
                                "name = \"a\"",                                       // 3
                                "count = 7",                                          // 4
                                "ratio = 0.5",                                        // 5
                                "whole = 3",                                          // 6
                                "flag = true",                                        // 7
                                "limit = \"2MiB\"",                                   // 8
                                "wait = \"250ms\"",                                   // 9
                                "list = [\"a\", \"b\"]",                              // 10
                                "upstream = \"[::1]:8080\"",                          // 11
                                "upstreams = [\"192.0.2.1\", \"relay.example:99\"]",  // 12
                                "typo = 1",                                           // 13
                                "bad_count = 70",                                     // 14
                                "bad_list = [\"a\", 2]",                              // 15
                            }),
                            "test.toml");
  Settings& settings = stageSettings(config);
  BOOST_TEST(settings.path() == "stage[0]");
  BOOST_TEST(settings.string("name").value() == "a");
  BOOST_TEST(settings.integer("count", 0, 10).value() == 7);
  BOOST_TEST(settings.number("ratio").value() == 0.5);
  BOOST_TEST(settings.number("whole").value() == 3.0);
  BOOST_TEST(settings.boolean("flag").value());
  BOOST_TEST(settings.size("limit").value() == 2u * 1024u * 1024u);
  BOOST_TEST(settings.duration("wait")->count() == 250);
  BOOST_TEST(settings.strings("list").value() == (std::vector<std::string>{"a", "b"}),
             boost::test_tools::per_element());
  BOOST_TEST(settings.hostPort("upstream", 25)->text() == "[::1]:8080");
  auto upstreams = settings.hostPorts("upstreams", 25);
  BOOST_TEST_REQUIRE(upstreams->size() == 2u);
  BOOST_TEST((*upstreams)[0].text() == "192.0.2.1:25");
  BOOST_TEST((*upstreams)[1].text() == "relay.example:99");
  BOOST_TEST(!settings.string("absent").has_value());
  BOOST_TEST(settings.ok());

  BOOST_TEST(!settings.integer("bad_count", 0, 10).has_value());
  BOOST_TEST(!settings.strings("bad_list").has_value());
  BOOST_TEST(!settings.ok());
  settings.fail("name", "is taken");
  settings.fail("missing", "is required");
  auto errors = settings.finish();
  BOOST_TEST_INFO(describe(errors));
  BOOST_TEST_REQUIRE(errors.size() == 5u);
  BOOST_TEST(errors[0].text() == "test.toml:14: stage[0].bad_count: must be at most 10");
  BOOST_TEST(errors[1].text() == "test.toml:15: stage[0].bad_list[1]: expected a string, found an integer");
  BOOST_TEST(errors[2].text() == "test.toml:3: stage[0].name: is taken");
  BOOST_TEST(errors[3].text() == "test.toml:1: stage[0].missing: is required");
  BOOST_TEST(errors[4].text() == "test.toml:13: stage[0].typo: unknown key");
  BOOST_TEST(settings.finish().size() == 5u, "a second finish() reports nothing new");
}

BOOST_AUTO_TEST_CASE(stage_settings_report_wrong_types_at_the_value) {
  auto config = parseConfig(lines({"[[stage]]", "type = \"x\"", "n = \"many\"", "s = 5", "b = 1", "d = true",
                                   "z = [1]", "h = 25", "f = \"1.5\"", "l = \"a\"", "q = \"12 parsecs\""}),
                            "test.toml");
  Settings& settings = stageSettings(config);
  BOOST_TEST(!settings.integer("n", 0, 9).has_value());
  BOOST_TEST(!settings.string("s").has_value());
  BOOST_TEST(!settings.boolean("b").has_value());
  BOOST_TEST(!settings.duration("d").has_value());
  BOOST_TEST(!settings.size("z").has_value());
  BOOST_TEST(!settings.hostPort("h", 25).has_value());
  BOOST_TEST(!settings.number("f").has_value());
  BOOST_TEST(!settings.strings("l").has_value());
  BOOST_TEST(!settings.size("q").has_value());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"n", "expected an integer, found a string"},
      {"s", "expected a string, found an integer"},
      {"b", "expected a boolean (true or false), found an integer"},
      {"d", "expected a duration (seconds, or a string like \"30s\"), found a boolean"},
      {"z", "expected a size (bytes, or a string like \"25MiB\"), found an array"},
      {"h", "expected an address (a string like \"host:port\"), found an integer"},
      {"f", "expected a number, found a string"},
      {"l", "expected an array of strings, found a string"},
      {"q", "invalid size \"12 parsecs\": unknown unit \"parsecs\" (use B, KB, MB, GB, KiB, MiB, GiB)"},
  };
  auto errors = settings.finish();
  BOOST_TEST_REQUIRE(errors.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    BOOST_TEST(errors[i].line == i + 3);
    BOOST_TEST(errors[i].key == "stage[0]." + expected[i].first);
    BOOST_TEST(errors[i].message == expected[i].second);
  }
}

BOOST_AUTO_TEST_CASE(config_error_text_omits_what_is_missing) {
  BOOST_TEST((ConfigError{"mailgate.toml", 12, "server.max_recipients", "must be at least 1"}.text()) ==
             "mailgate.toml:12: server.max_recipients: must be at least 1");
  BOOST_TEST((ConfigError{"mailgate.toml", 0, "server.listen", "bad"}.text()) ==
             "mailgate.toml: server.listen: bad");
  BOOST_TEST((ConfigError{"mailgate.toml", 3, "", "expected a value"}.text()) ==
             "mailgate.toml:3: expected a value");
  BOOST_TEST((ConfigError{"/etc/x.toml", 0, "", "cannot read"}.text()) == "/etc/x.toml: cannot read");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
