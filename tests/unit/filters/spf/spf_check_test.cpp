// checkSpf over in-memory zones (memory_dns.h): results, identities, the per-check budget, the
// libspf2 defects of issue 3 point 5 (a)–(g), explanations, and the CVE-2023-42118 guard.

#include <boost/test/unit_test.hpp>

#include <chrono>

#include "filters/spf/spf_check.h"
#include "tests/unit/filters/spf/memory_dns.h"

namespace mailgate {
namespace {

using test::MemoryDns;

SpfOutcome check(const DnsLookup& dns, const std::string& ip, const std::string& sender,
                 const std::string& helo = "mail.example.org", const SpfLimits& limits = {}) {
  return checkSpf(dns, SpfRequest{ip, sender, helo, "mx.receiver.example"}, limits);
}

std::string resultOf(const SpfOutcome& outcome) { return spfResultName(outcome.result); }

bool logged(const MemoryDns& dns, const std::string& line) {
  auto log = dns.log();
  return std::find(log.begin(), log.end(), line) != log.end();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spf_check)

BOOST_AUTO_TEST_CASE(results_and_reasons) {
  MemoryDns dns;
  dns.addTxt("example.com", {"v=spf1 ip4:192.0.2.0/24 a:mail.example.com ~all"});
  dns.add("mail.example.com", "A", "198.51.100.7");
  dns.addTxt("neutral.example", {"v=spf1 ?all"});
  dns.addTxt("empty.example", {"v=spf1"});
  dns.addTxt("norecord.example", {"google-site-verification=x"});

  SpfOutcome pass = check(dns, "192.0.2.10", "user@example.com");
  BOOST_TEST(resultOf(pass) == "pass");
  BOOST_TEST(pass.identity == "mailfrom");
  BOOST_TEST(pass.domain == "example.com");
  BOOST_TEST(pass.sender == "user@example.com");
  BOOST_TEST(pass.mechanism == "ip4:192.0.2.0/24");
  BOOST_TEST(pass.reason == "mechanism ip4:192.0.2.0/24 matched");
  BOOST_TEST(pass.dns_queries == 1u);

  SpfOutcome by_a = check(dns, "198.51.100.7", "user@example.com");
  BOOST_TEST(by_a.mechanism == "a:mail.example.com");
  SpfOutcome softfail = check(dns, "203.0.113.1", "user@example.com");
  BOOST_TEST(resultOf(softfail) == "softfail");
  BOOST_TEST(softfail.mechanism == "~all");
  BOOST_TEST(softfail.explanation.empty());
  BOOST_TEST(resultOf(check(dns, "203.0.113.1", "u@neutral.example")) == "neutral");
  SpfOutcome fell_off = check(dns, "203.0.113.1", "u@empty.example");
  BOOST_TEST(resultOf(fell_off) == "neutral");
  BOOST_TEST(fell_off.mechanism.empty());
  BOOST_TEST(resultOf(check(dns, "203.0.113.1", "u@norecord.example")) == "none");
  BOOST_TEST(resultOf(check(dns, "203.0.113.1", "u@nxdomain.example")) == "none");
  BOOST_TEST(dns.queries() == 9u);  // the cache is per check: every check asks again
}

BOOST_AUTO_TEST_CASE(identities) {
  MemoryDns dns;
  dns.addTxt("mail.example.org", {"v=spf1 -all"});
  dns.addTxt("example.net", {"v=spf1 -all exp=why.example.net"});
  dns.addTxt("why.example.net", {"%{l} at %{o} via %{h}"});
  // The null sender checks the HELO identity as postmaster@helo (RFC 7208 §2.3, §2.4).
  SpfOutcome helo = check(dns, "192.0.2.1", "", "mail.example.org");
  BOOST_TEST(helo.identity == "helo");
  BOOST_TEST(helo.sender == "postmaster@mail.example.org");
  BOOST_TEST(resultOf(helo) == "fail");
  // A HELO that is no FQDN gives none, without a query.
  for (std::string bad : {"localhost", "[192.0.2.1]", "1.2.3.4", "bad..example.org", ""}) {
    SpfOutcome none = check(dns, "192.0.2.1", "", bad);
    BOOST_TEST(resultOf(none) == "none", bad);
    BOOST_TEST(none.dns_queries == 0u);
  }
  // No local-part: "postmaster" (§4.3).
  SpfOutcome no_local = check(dns, "192.0.2.1", "@example.net", "relay.example.org");
  BOOST_TEST(no_local.sender == "postmaster@example.net");
  BOOST_TEST(no_local.explanation == "postmaster at example.net via relay.example.org");
  // Malformed domains and oversized local-parts give none (§4.3), before libspf2 sees them.
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@[192.0.2.1]")) == "none");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@" + std::string(64, 'a') + ".example.net")) == "none");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", std::string(65, 'l') + "@example.net")) == "none");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "a\x01zero@example.net")) == "none");
  BOOST_TEST(resultOf(check(dns, "not-an-ip", "u@example.net")) == "none");
}

// (a) top-level lookup failures are temperror / permerror / none, never "invalid".
BOOST_AUTO_TEST_CASE(top_level_failures) {
  MemoryDns dns;
  dns.addTimeout("timeout.example");
  dns.addServFail("servfail.example");
  dns.addTxt("two.example", {"v=spf1 -all"});
  dns.addTxt("two.example", {"v=spf1 +all"});
  dns.addTxt("syntax.example", {"v=spf1 a:"});
  SpfOutcome timeout = check(dns, "192.0.2.1", "u@timeout.example");
  BOOST_TEST(resultOf(timeout) == "temperror");
  BOOST_TEST(timeout.reason == "timeout.example TXT: dns timeout");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@servfail.example")) == "temperror");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@two.example")) == "permerror");
  SpfOutcome syntax = check(dns, "192.0.2.1", "u@syntax.example");
  BOOST_TEST(resultOf(syntax) == "permerror");
  BOOST_TEST(syntax.reason == "syntax.example: \"a:\": empty domain-spec (RFC 7208 §4.6.1)");
}

BOOST_AUTO_TEST_CASE(dns_failures_during_the_check) {
  MemoryDns dns;
  dns.addTxt("inc.example", {"v=spf1 include:slow.example -all"});
  dns.addTimeout("slow.example");
  dns.addTxt("a.example", {"v=spf1 a:broken.example -all"});
  dns.addServFail("broken.example");
  // RFC 7208 §5.5: DNS errors inside ptr skip names rather than give temperror.
  dns.addTxt("ptr.example", {"v=spf1 ptr -all"});
  dns.addServFail("1.2.0.192.in-addr.arpa");
  // A permerror decided first stays (the void limit here, before the timeout).
  dns.addTxt("first.example", {"v=spf1 a:n1.example a:n2.example a:n3.example a:slow.example -all"});
  SpfOutcome include = check(dns, "192.0.2.1", "u@inc.example");
  BOOST_TEST(resultOf(include) == "temperror");
  BOOST_TEST(include.reason == "slow.example TXT: dns timeout");
  SpfOutcome a = check(dns, "192.0.2.1", "u@a.example");
  BOOST_TEST(resultOf(a) == "temperror");
  BOOST_TEST(a.reason == "broken.example A: dns servfail");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@ptr.example")) == "fail");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@first.example")) == "permerror");
}

// (b) an IPv4-mapped client is an IPv4 client (§5); loopback is evaluated, no "free ride".
BOOST_AUTO_TEST_CASE(client_addresses) {
  MemoryDns dns;
  dns.addTxt("example.com", {"v=spf1 ip4:192.0.2.1 ip6:2001:db8::/32 -all"});
  BOOST_TEST(resultOf(check(dns, "::ffff:192.0.2.1", "u@example.com")) == "pass");
  BOOST_TEST(resultOf(check(dns, "[::FFFF:192.0.2.1]", "u@example.com")) == "pass");
  BOOST_TEST(resultOf(check(dns, "2001:db8::5", "u@example.com")) == "pass");
  BOOST_TEST(resultOf(check(dns, "2001:db9::5", "u@example.com")) == "fail");
  BOOST_TEST(resultOf(check(dns, "127.0.0.1", "u@example.com")) == "fail");
  BOOST_TEST(resultOf(check(dns, "::1", "u@example.com")) == "fail");
}

// (c) (d) (e): records the validator refuses are permerror wherever they are met.
BOOST_AUTO_TEST_CASE(invalid_records_anywhere_are_permerror) {
  MemoryDns dns;
  dns.addTxt("top.example", {"v=spf1 include:bad.example -all"});
  dns.addTxt("bad.example", {"v=spf1 ip4:192.0.2.0/24 exp=a.example exp=b.example"});
  dns.addTxt("redirect.example", {"v=spf1 redirect=macro.example"});
  dns.addTxt("macro.example", {"v=spf1 exists:%{x}.example -all"});
  SpfOutcome include = check(dns, "192.0.2.1", "u@top.example");
  BOOST_TEST(resultOf(include) == "permerror");
  BOOST_TEST(include.reason == "bad.example: exp= appears twice (RFC 7208 §6)");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@redirect.example")) == "permerror");
}

// (d) valid syntax libspf2 refuses: "/0" lengths, modifier names with ".".
BOOST_AUTO_TEST_CASE(zero_cidr_lengths_and_dotted_modifier_names) {
  MemoryDns dns;
  dns.addTxt("ip.example", {"v=spf1 -ip4:192.0.2.1 ip4:10.0.0.0/0 -all"});
  dns.addTxt("a.example", {"v=spf1 a:hosts.example/0//0 -all"});
  dns.add("hosts.example", "A", "198.51.100.1");
  dns.addTxt("mx.example", {"v=spf1 mx//0 -all"});
  dns.addMx("mx.example", 10, "mx1.example");
  dns.add("mx1.example", "AAAA", "2001:db8::99");
  dns.addTxt("mod.example", {"v=spf1 moo.cow-far_out=man:dog/cat ip4:192.0.2.1 -all"});
  BOOST_TEST(resultOf(check(dns, "203.0.113.9", "u@ip.example")) == "pass");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@ip.example")) == "fail");
  SpfOutcome a = check(dns, "203.0.113.9", "u@a.example");
  BOOST_TEST(resultOf(a) == "pass");
  BOOST_TEST(a.mechanism == "a:hosts.example/0//0");
  BOOST_TEST(resultOf(check(dns, "2001:db8:ffff::1", "u@a.example")) == "fail");  // no AAAA
  BOOST_TEST(resultOf(check(dns, "2001:db8:ffff::1", "u@mx.example")) == "pass");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@mx.example")) == "fail");  // //0 is for IPv6 only
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@mod.example")) == "pass");
}

// The /0 answer's marker cannot be forged from input: a HELO carrying it becomes "unknown".
BOOST_AUTO_TEST_CASE(zero_cidr_marker_cannot_be_forged) {
  MemoryDns dns;
  dns.addTxt("victim.example", {"v=spf1 a:%{h} -all"});
  dns.add("evil.example", "A", "198.51.100.1");
  SpfOutcome outcome = check(dns, "203.0.113.9", "u@victim.example", std::string("evil.example.\x01zero-cidr"));
  BOOST_TEST(resultOf(outcome) == "fail");
  BOOST_TEST(logged(dns, "unknown A"));
}

// (f) the RFC's limits are per check: 10 DNS-querying terms across includes.
BOOST_AUTO_TEST_CASE(include_tree_9x9x9_is_permerror_within_the_budget) {
  MemoryDns dns;
  auto includes = [](const std::string& prefix) {
    std::string record = "v=spf1";
    for (int i = 1; i <= 9; ++i) record += " include:" + prefix + std::to_string(i) + ".tree.example";
    return record + " -all";
  };
  dns.addTxt("tree.example", {includes("n")});
  for (int i = 1; i <= 9; ++i) {
    std::string level1 = "n" + std::to_string(i);
    dns.addTxt(level1 + ".tree.example", {includes(level1 + "-")});
    for (int j = 1; j <= 9; ++j) {
      std::string level2 = level1 + "-" + std::to_string(j);
      dns.addTxt(level2 + ".tree.example", {includes(level2 + "-")});
      for (int k = 1; k <= 9; ++k) dns.addTxt(level2 + "-" + std::to_string(k) + ".tree.example", {"v=spf1 -all"});
    }
  }
  SpfOutcome outcome = check(dns, "192.0.2.1", "u@tree.example");
  BOOST_TEST(resultOf(outcome) == "permerror");
  BOOST_TEST(outcome.reason == "too many DNS-querying terms (11 > 10, RFC 7208 §4.6.4)");
  BOOST_TEST(dns.queries() <= 11u);  // the top record and 10 includes (libspf2 alone: 820)
  BOOST_TEST(outcome.dns_queries == dns.queries());
}

BOOST_AUTO_TEST_CASE(ten_terms_are_allowed_eleven_are_not) {
  MemoryDns dns;
  dns.addTxt("ten.example", {"v=spf1 a mx a mx include:inc.example ip4:192.0.2.1 -all"});
  dns.addTxt("inc.example", {"v=spf1 a a a a a"});
  dns.add("ten.example", "A", "198.51.100.1");
  dns.addMx("ten.example", 10, "ten.example");
  dns.add("inc.example", "A", "198.51.100.2");
  dns.addTxt("eleven.example", {"v=spf1 include:ten.example a ip4:192.0.2.1"});
  dns.add("eleven.example", "A", "198.51.100.3");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@ten.example")) == "pass");
  SpfOutcome eleven = check(dns, "192.0.2.9", "u@eleven.example");
  BOOST_TEST(resultOf(eleven) == "permerror");
  BOOST_TEST(eleven.reason.starts_with("too many DNS-querying terms (11 > 10"));
}

BOOST_AUTO_TEST_CASE(void_lookups) {
  MemoryDns dns;
  dns.touch("nodata.example");
  dns.addTxt("two.example", {"v=spf1 a:nx1.example a:nodata.example +all"});
  dns.addTxt("three.example", {"v=spf1 a:nx1.example mx:nodata.example exists:nx2.example +all"});
  dns.addTxt("inc.example", {"v=spf1 a:nx1.example include:void.example +all"});
  dns.addTxt("void.example", {"v=spf1 a:nx2.example a:nx3.example"});
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@two.example")) == "pass");
  SpfOutcome three = check(dns, "192.0.2.1", "u@three.example");
  BOOST_TEST(resultOf(three) == "permerror");
  BOOST_TEST(three.reason == "too many void lookups (3 > 2, RFC 7208 §4.6.4)");
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@inc.example")) == "permerror");  // counted across includes
}

// (f) more than 10 PTR names are ignored (libspf2: permerror); more than 10 MX names are permerror.
BOOST_AUTO_TEST_CASE(ptr_and_mx_name_limits) {
  MemoryDns dns;
  dns.addTxt("ptr.example", {"v=spf1 ptr:good.example -all"});
  for (int i = 1; i <= 12; ++i) {
    std::string name = (i > 10 ? "h" + std::to_string(i) + ".good.example" : "h" + std::to_string(i) + ".other.example");
    dns.add("1.2.0.192.in-addr.arpa", "PTR", name);
    dns.add(name, "A", "192.0.2.1");
  }
  SpfOutcome ptr = check(dns, "192.0.2.1", "u@ptr.example");
  BOOST_TEST(resultOf(ptr) == "fail");  // h11 and h12 would match, but only 10 names are checked
  BOOST_TEST(!logged(dns, "h11.good.example A"));
  dns.addTxt("mx.example", {"v=spf1 mx -all"});
  for (int i = 1; i <= 11; ++i) dns.addMx("mx.example", static_cast<uint16_t>(i), "mx" + std::to_string(i) + ".example");
  SpfOutcome mx = check(dns, "192.0.2.1", "u@mx.example");
  BOOST_TEST(resultOf(mx) == "permerror");
  BOOST_TEST(mx.reason == "more than 10 MX names at mx.example (RFC 7208 §4.6.4)");
}

BOOST_AUTO_TEST_CASE(total_query_cap) {
  MemoryDns dns;
  dns.addTxt("many.example", {"v=spf1 mx -all"});
  for (int i = 1; i <= 10; ++i) {
    std::string name = "mx" + std::to_string(i) + ".many.example";
    dns.addMx("many.example", static_cast<uint16_t>(i), name);
    dns.add(name, "A", "198.51.100." + std::to_string(i));
  }
  SpfLimits limits;
  BOOST_TEST(resultOf(check(dns, "192.0.2.1", "u@many.example", "h.example", limits)) == "fail");
  limits.total_queries = 8;
  SpfOutcome capped = check(dns, "192.0.2.1", "u@many.example", "h.example", limits);
  BOOST_TEST(resultOf(capped) == "permerror");
  BOOST_TEST(capped.reason == "too many DNS queries (more than 8 for one check)");
  BOOST_TEST(capped.dns_queries == 8u);
}

// (g) explanations are expanded (§7, with c r t), fail only, printable ASCII only.
BOOST_AUTO_TEST_CASE(explanations) {
  MemoryDns dns;
  dns.addTxt("example.com", {"v=spf1 ~ip4:192.0.2.2 -all exp=explain.%{d}"});
  dns.addTxt("explain.example.com", {"%{S} from %{c} is not allowed to %{r} (%{v}, %{i}); see %{t}"});
  dns.addTxt("raw.example", {"v=spf1 -all exp=rawexp.example"});
  dns.addTxt("rawexp.example", {"caf\xC3\xA9"});
  dns.addTxt("long.example", {"v=spf1 -all exp=longexp.example"});
  dns.addTxt("longexp.example", {std::string(600, 'x')});
  SpfOutcome fail = check(dns, "192.0.2.1", "user@example.com");
  BOOST_TEST(resultOf(fail) == "fail");
  BOOST_TEST(fail.explanation.starts_with(
      "user%40example.com from 192.0.2.1 is not allowed to mx.receiver.example (in-addr, 192.0.2.1); see "));
  BOOST_TEST(fail.explanation.find("%{") == std::string::npos);
  BOOST_TEST(check(dns, "192.0.2.2", "user@example.com").explanation.empty());  // softfail
  BOOST_TEST(check(dns, "192.0.2.1", "u@raw.example").explanation.empty());
  BOOST_TEST(check(dns, "192.0.2.1", "u@long.example").explanation.size() == 400u);
}

BOOST_AUTO_TEST_CASE(redirect_include_and_trailing_dots) {
  MemoryDns dns;
  dns.addTxt("example.com", {"v=spf1 include:_spf.example.com. redirect=_rest.example.com"});
  dns.addTxt("_spf.example.com", {"v=spf1 exists:%{i}.allow.%{d} ?all"});
  dns.add("192.0.2.7.allow._spf.example.com", "A", "127.0.0.2");
  dns.addTxt("_rest.example.com", {"v=spf1 -all exp=why.example.com"});
  dns.addTxt("why.example.com", {"%{d} says no"});
  SpfOutcome pass = check(dns, "192.0.2.7", "u@example.com");
  BOOST_TEST(resultOf(pass) == "pass");
  BOOST_TEST(pass.mechanism == "include:_spf.example.com.");  // %{d} had no trailing dot
  SpfOutcome fail = check(dns, "192.0.2.8", "u@example.com");
  BOOST_TEST(resultOf(fail) == "fail");
  BOOST_TEST(fail.mechanism == "-all");
  BOOST_TEST(fail.reason == "mechanism -all matched in the record of _rest.example.com");
  BOOST_TEST(fail.explanation == "_rest.example.com says no");  // the deciding record's exp (§6.2)
}

// Found by spf_fuzz: a redirect= of 37 "%{d}" made libspf2's next current domain 37 times
// longer at every level (past 1 GB within six). The current domain is now the name as looked up
// — truncated to 253 octets (RFC 7208 §7.3) — so the chain ends at the term limit, small.
BOOST_AUTO_TEST_CASE(current_domain_stays_a_name_through_redirects) {
  class EveryName final : public DnsLookup {
   public:
    explicit EveryName(std::string record) : record_(std::move(record)) {}
    DnsRecordSet query(std::string_view name, uint16_t type) const override {
      longest_ = std::max(longest_, name.size());
      DnsRecordSet records;
      records.status = type == dns_type::TXT ? DnsStatus::Ok : DnsStatus::NoData;
      if (type == dns_type::TXT) records.txt = {record_};
      return records;
    }
    std::string record_;
    mutable size_t longest_ = 0;
  };
  std::string spec;
  for (int i = 0; i < 20; ++i) spec += "%{d}.";  // 20×: the most that fits 256 compiled bytes
  EveryName dns("v=spf1 redirect=" + spec + "example");
  SpfOutcome outcome = check(dns, "192.0.2.1", "u@example.com");
  BOOST_TEST(resultOf(outcome) == "permerror");
  BOOST_TEST(outcome.reason.starts_with("too many DNS-querying terms"), outcome.reason);
  BOOST_TEST(dns.longest_ <= 253u);
}

// CVE-2023-42118: the record that smashes Debian's libspf2 stack is refused before libspf2
// compiles it (this test would crash otherwise).
BOOST_AUTO_TEST_CASE(cve_2023_42118_record_from_dns) {
  MemoryDns dns;
  std::string record = "v=spf1 exists:";
  for (int i = 0; i < 127; ++i) record += "%{d}";
  record += std::string(4000, 'A') + ".com";
  std::vector<std::string> strings;
  for (size_t at = 0; at < record.size(); at += 255) strings.push_back(record.substr(at, 255));
  dns.addTxt("evil.example", strings);
  dns.addTxt("top.example", {"v=spf1 include:evil.example -all"});
  for (const std::string sender : {"u@evil.example", "u@top.example"}) {
    SpfOutcome outcome = check(dns, "192.0.2.1", sender);
    BOOST_TEST(resultOf(outcome) == "permerror");
    BOOST_TEST(outcome.reason.find("CVE-2023-42118") != std::string::npos, outcome.reason);
  }
}

// One SPF_server_t per check: creating it is a malloc, gethostname() and two tiny compiles.
BOOST_AUTO_TEST_CASE(cost_of_a_check) {
  MemoryDns dns;
  dns.addTxt("example.com", {"v=spf1 ip4:192.0.2.0/24 -all"});
  constexpr int kChecks = 2000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kChecks; ++i) check(dns, "198.51.100.1", "user@example.com");
  auto elapsed = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST_MESSAGE("checkSpf with a fresh SPF_server_t: " << elapsed / kChecks << " µs per check");
  BOOST_TEST(elapsed / kChecks < 5000.0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
