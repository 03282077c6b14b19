// The lists stage's entries: each kind matches what it should and nothing more, bad lines are
// errors naming file:line, and a large list loads and matches (speed is bench/lists' business).
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "filters/lists/access_list.h"
#include "tests/unit/temp_directory.h"

namespace mailgate {
namespace {

Path path(const std::string& address) {
  auto parsed = parseRcptCommand("TO:<" + address + ">");
  BOOST_REQUIRE(parsed);
  return parsed->path;
}

AccessList listOf(std::initializer_list<std::string_view> entries) {
  AccessList list;
  for (auto entry : entries) BOOST_REQUIRE_MESSAGE(list.add(entry), entry);
  return list;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(access_list)

BOOST_AUTO_TEST_CASE(clients_by_address_and_network) {
  auto list = listOf({"192.0.2.0/24", "198.51.100.7", "2001:db8::/32"});
  BOOST_TEST(list.matchClient(*IpAddress::parse("192.0.2.77")).value() == "192.0.2.0/24");
  BOOST_TEST(list.matchClient(*IpAddress::parse("::ffff:192.0.2.77")).value() == "192.0.2.0/24");
  BOOST_TEST(list.matchClient(*IpAddress::parse("198.51.100.7")).value() == "198.51.100.7");
  BOOST_TEST(!list.matchClient(*IpAddress::parse("198.51.100.8")));
  BOOST_TEST(list.matchClient(*IpAddress::parse("2001:db8:1::5")).value() == "2001:db8::/32");
  BOOST_TEST(!list.matchClient(*IpAddress::parse("2001:db9::5")));
}

BOOST_AUTO_TEST_CASE(helo_names_exactly) {
  auto list = listOf({"helo:Bad.Example"});
  BOOST_TEST(list.matchHelo("bad.example.").value() == "helo:bad.example");
  BOOST_TEST(!list.matchHelo("mx.bad.example"));
}

BOOST_AUTO_TEST_CASE(senders_by_domain_with_subdomains_or_by_address) {
  auto list = listOf({"from:spam.example", "from:User@X.example"});
  BOOST_TEST(list.matchSender(path("a@spam.example")).value() == "from:spam.example");
  BOOST_TEST(list.matchSender(path("a@mail.SPAM.example")).value() == "from:spam.example");
  BOOST_TEST(!list.matchSender(path("a@notspam.example")));
  BOOST_TEST(list.matchSender(path("user@x.example")).value() == "from:user@x.example");
  BOOST_TEST(!list.matchSender(path("other@x.example")));
}

BOOST_AUTO_TEST_CASE(recipients_by_address_or_domain) {
  auto list = listOf({"to:user@example.org", "to:closed.example.org"});
  BOOST_TEST(list.matchRecipient(path("USER@example.org")).value() == "to:user@example.org");
  BOOST_TEST(!list.matchRecipient(path("other@example.org")));
  BOOST_TEST(list.matchRecipient(path("any@closed.example.org")).value() == "to:closed.example.org");
}

BOOST_AUTO_TEST_CASE(bad_lines_are_errors_with_their_place) {
  test::TempDirectory dir;
  std::string file = dir.path() + "/block.txt";
  std::ofstream(file) << "# comment\n192.0.2.0/24  # trailing comment\n\nsender:x.example\n192.0.2.1/24\nfrom:\n";
  auto loaded = AccessList::load({file});
  BOOST_REQUIRE(!loaded);
  BOOST_REQUIRE_EQUAL(loaded.error().size(), 3u);
  BOOST_TEST(loaded.error()[0].starts_with(file + ":4: unknown kind"));
  BOOST_TEST(loaded.error()[1].starts_with(file + ":5: "));
  BOOST_TEST(loaded.error()[2].starts_with(file + ":6: "));
  BOOST_TEST(!AccessList::load({dir.path() + "/missing.txt"}));
}

BOOST_AUTO_TEST_CASE(a_large_list_loads_and_matches) {
  test::TempDirectory dir;
  std::string file = dir.path() + "/big.txt";
  {
    std::ofstream out(file);
    for (int i = 0; i < 100000; ++i) out << "10." << (i >> 16) << '.' << ((i >> 8) & 255) << '.' << (i & 255) << "\n";
    for (int i = 0; i < 100000; ++i) out << "from:d" << i << ".example\n";
  }
  auto loaded = AccessList::load({file});
  BOOST_REQUIRE(loaded);
  BOOST_TEST(loaded->size() == 200000u);
  BOOST_TEST(loaded->matchClient(*IpAddress::parse("10.1.134.159")).has_value());
  BOOST_TEST(!loaded->matchClient(*IpAddress::parse("10.2.0.0")));
  BOOST_TEST(loaded->matchSender(path("a@mx.d99999.example")).value() == "from:d99999.example");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
