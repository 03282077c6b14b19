// The dnsbl stage without sockets: one zone's answer read from an in-memory DNS (listed, the
// filter, answers outside 127.0.0.0/8, failures), the score and the reply, and the phases run
// through a pipeline with the inline job runner.
#include <boost/test/unit_test.hpp>

#include "filters/dnsbl/dnsbl_stage.h"
#include "filters/dnsbl/uri_domains.h"
#include "tests/unit/filters/spf/memory_dns.h"

namespace mailgate {
namespace {

DnsblZone zone(const char* entry) {
  auto parsed = DnsblZone::parse(entry);
  BOOST_REQUIRE(parsed);
  return *parsed;
}

ZoneAnswer ask(const test::MemoryDns& dns, const char* entry, const std::string& ip = "192.0.2.1") {
  return askZone(dns, ZoneQuestion{zone(entry), ListedThing::Client, ip, clientPrefix(ip)});
}

ZoneAnswer listed(const char* name, int weight, ListedThing thing = ListedThing::Client, std::string text = {}) {
  ZoneAnswer answer;
  answer.zone = name;
  answer.weight = weight;
  answer.thing = thing;
  answer.item = thing == ListedThing::Client ? "192.0.2.1" : "spam.example";
  answer.result = ZoneAnswer::Result::Listed;
  answer.addresses = {"127.0.0.2"};
  answer.text = std::move(text);
  return answer;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dnsbl_stage)

BOOST_AUTO_TEST_CASE(client_questions_are_reversed_octets_or_nibbles) {
  BOOST_TEST(clientPrefix("192.0.2.1") == "1.2.0.192");
  BOOST_TEST(clientPrefix("2001:db8::1") ==
             "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  BOOST_TEST(clientPrefix("::ffff:192.0.2.1") == "1.2.0.192");
}

BOOST_AUTO_TEST_CASE(a_zone_answer_is_listed_filtered_ignored_or_failed) {
  test::MemoryDns dns;
  dns.add("1.2.0.192.bl.example", "A", "127.0.0.2");
  dns.addTxt("1.2.0.192.bl.example", {"Listed: see https://bl.example/q?192.0.2.1"});
  dns.add("1.2.0.192.filtered.example", "A", "127.0.0.1");
  dns.add("1.2.0.192.broken.example", "A", "8.8.8.8");
  dns.addTimeout("1.2.0.192.slow.example");
  dns.addServFail("1.2.0.192.down.example");

  auto hit = ask(dns, "bl.example*3");
  BOOST_TEST(hit.listed());
  BOOST_TEST(hit.weight == 3);
  BOOST_TEST(hit.query == "1.2.0.192.bl.example");
  BOOST_TEST(hit.text == "Listed: see https://bl.example/q?192.0.2.1");
  BOOST_TEST((ask(dns, "filtered.example=127.0.0.[2..11]").result == ZoneAnswer::Result::NotListed));
  BOOST_TEST((ask(dns, "broken.example").result == ZoneAnswer::Result::Ignored));
  BOOST_TEST((ask(dns, "nothing.example").result == ZoneAnswer::Result::NotListed));
  auto slow = ask(dns, "slow.example");
  BOOST_TEST((slow.result == ZoneAnswer::Result::Failed));
  BOOST_TEST(slow.problem.find("timeout") == 0, slow.problem);
  BOOST_TEST((ask(dns, "down.example").result == ZoneAnswer::Result::Failed));
}

BOOST_AUTO_TEST_CASE(weights_add_up_to_the_threshold_and_the_heaviest_listing_is_named) {
  auto below = DnsblStage::decide({listed("a.example", 1), listed("b.example", 1)}, 3);
  BOOST_TEST(!below.ends());
  BOOST_TEST(below.score == 2);
  auto over = DnsblStage::decide({listed("a.example", 1), listed("b.example", 2, ListedThing::Client, "go away")}, 3);
  BOOST_REQUIRE(over.ends());
  BOOST_TEST(over.reply.summary() ==
             "554 5.7.1 Service unavailable; client [192.0.2.1] blocked using b.example; go away");
  // An allow list's negative weight takes a listed client back under the threshold.
  auto allowed = DnsblStage::decide({listed("a.example", 3), listed("wl.example", -5)}, 3);
  BOOST_TEST(!allowed.ends());
  BOOST_TEST(allowed.score == -2);
  auto sender = DnsblStage::decide({listed("dbl.example", 2, ListedThing::Sender)}, 1);
  BOOST_TEST(sender.reply.summary() == "554 5.7.1 Service unavailable; sender domain spam.example blocked using dbl.example");
}

BOOST_AUTO_TEST_CASE(a_uri_list_counts_once_per_message) {
  auto one = listed("uri.example", 2, ListedThing::Uri);
  auto two = listed("uri.example", 2, ListedThing::Uri);
  two.item = "other.example";
  BOOST_TEST(DnsblStage::decide({one, two}, 10).score == 2);
}

BOOST_AUTO_TEST_CASE(uri_hosts) {
  BOOST_TEST(uriHost("http://user@Www.Example.COM:80/x?y") == "www.example.com");
  BOOST_TEST(uriHost("https://example.org.") == "example.org");
  BOOST_TEST(uriHost("mailto:someone@Mail.Example?subject=x") == "mail.example");
  BOOST_TEST(uriHost("http://192.0.2.1/x") == "");
  BOOST_TEST(uriHost("http://[2001:db8::1]/") == "");
  BOOST_TEST(uriHost("news:comp.lang") == "");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
