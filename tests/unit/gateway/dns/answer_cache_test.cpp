#include <boost/test/unit_test.hpp>

#include "gateway/dns/answer_cache.h"

namespace mailgate {
namespace {

DnsRecordSet answer(DnsStatus status, std::string text = "v=spf1 -all") {
  DnsRecordSet set;
  set.status = status;
  if (status == DnsStatus::Ok) set.txt = {std::move(text)};
  return set;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(answer_cache)

BOOST_AUTO_TEST_CASE(final_answers_are_kept_for_their_ttl) {
  AnswerCache cache;
  auto now = AnswerCache::Clock::now();
  cache.store("Example.COM.", dns_type::TXT, answer(DnsStatus::Ok), 60, now);
  auto found = cache.find("example.com", dns_type::TXT, now + std::chrono::seconds(59));
  BOOST_REQUIRE(found.has_value());
  BOOST_TEST(found->txt.front() == "v=spf1 -all");
  BOOST_TEST(!cache.find("example.com", dns_type::TXT, now + std::chrono::seconds(60)).has_value());
  BOOST_TEST(!cache.find("example.com", dns_type::A, now).has_value());  // another type, another answer
}

BOOST_AUTO_TEST_CASE(negative_answers_are_kept_failures_are_not) {
  AnswerCache cache;
  auto now = AnswerCache::Clock::now();
  cache.store("nx.example", dns_type::TXT, answer(DnsStatus::NxDomain), 30, now);
  cache.store("nodata.example", dns_type::TXT, answer(DnsStatus::NoData), 30, now);
  cache.store("servfail.example", dns_type::TXT, answer(DnsStatus::ServFail), 30, now);
  cache.store("timeout.example", dns_type::TXT, answer(DnsStatus::Timeout), 30, now);
  cache.store("zero.example", dns_type::TXT, answer(DnsStatus::Ok), 0, now);
  BOOST_TEST((cache.find("nx.example", dns_type::TXT, now)->status == DnsStatus::NxDomain),
             "NXDOMAIN kept");
  BOOST_TEST((cache.find("nodata.example", dns_type::TXT, now)->status == DnsStatus::NoData), "NODATA kept");
  BOOST_TEST(!cache.find("servfail.example", dns_type::TXT, now).has_value());
  BOOST_TEST(!cache.find("timeout.example", dns_type::TXT, now).has_value());
  BOOST_TEST(!cache.find("zero.example", dns_type::TXT, now).has_value());
}

BOOST_AUTO_TEST_CASE(long_ttls_are_cut_and_the_size_is_bounded) {
  AnswerCache cache(3);
  auto now = AnswerCache::Clock::now();
  cache.store("long.example", dns_type::TXT, answer(DnsStatus::Ok), 86400, now);
  BOOST_TEST(!cache.find("long.example", dns_type::TXT, now + AnswerCache::max_ttl).has_value());
  cache.store("a.example", dns_type::TXT, answer(DnsStatus::Ok), 10, now);
  cache.store("b.example", dns_type::TXT, answer(DnsStatus::Ok), 10, now);
  BOOST_TEST(cache.size() == 3u);
  // Full: the expired ones go first (none yet), then everything.
  cache.store("c.example", dns_type::TXT, answer(DnsStatus::Ok), 10, now + std::chrono::seconds(20));
  BOOST_TEST(cache.size() == 2u);  // a and b had expired; long and c remain
  cache.store("d.example", dns_type::TXT, answer(DnsStatus::Ok), 10, now + std::chrono::seconds(20));
  cache.store("e.example", dns_type::TXT, answer(DnsStatus::Ok), 10, now + std::chrono::seconds(20));
  BOOST_TEST(cache.size() <= 3u);
  BOOST_TEST(cache.find("e.example", dns_type::TXT, now + std::chrono::seconds(20)).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
