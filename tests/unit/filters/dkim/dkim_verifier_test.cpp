#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "filters/dkim/dkim_verifier.h"
#include "filters/dkim/public_key_cache.h"
#include "tests/unit/filters/spf/memory_dns.h"

namespace mailgate {
namespace {

// RFC 8463 Appendix A.2: the public keys of the A.3 example message.
constexpr const char* brisbane_key = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
constexpr const char* test_key =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
    "J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kry"
    "OTIKT+l/K4w3QIDAQAB";

// A message of tests/data/dkim, with CRLF line ends as on the wire.
std::string dataMessage(const std::string& name) {
  std::ifstream file(MAILGATE_TEST_DATA "/data/dkim/" + name, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(file, "tests/data/dkim/" + name + " is missing");
  std::stringstream text;
  text << file.rdbuf();
  std::string crlf;
  for (char c : text.str()) {
    if (c == '\n' && (crlf.empty() || crlf.back() != '\r')) crlf += '\r';
    crlf += c;
  }
  return crlf;
}

std::string rfc8463Message() { return dataMessage("rfc8463-A3.eml"); }

// The key of the identifiers-*.eml messages (signed by python3-dkim, tests/data/dkim/README.md).
constexpr const char* identifiers_key =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCzA4RbpSoGXZMNlNAzftSEhAnr6SjkaFgynFzFZOKC94Ga//t+VA73uleQfGLfhvUbWRogt+9Y3Sy15rtKCm/GAJ2YjxpOJV1zUoL9h1HChK+veqmppKoUIegHSCDug5It8imNXH3ai8DOYlBwkiRFU3vFpW8E4ywacy6n1HTbhQIDAQAB";

std::shared_ptr<test::MemoryDns> football(const char* brisbane = brisbane_key, const char* test = test_key) {
  auto dns = std::make_shared<test::MemoryDns>();
  if (brisbane != nullptr) dns->addTxt("brisbane._domainkey.football.example.com", {brisbane});
  if (test != nullptr) dns->addTxt("test._domainkey.football.example.com", {test});
  return dns;
}

std::shared_ptr<const DkimLibrary> library(std::shared_ptr<const DnsLookup> dns, DkimLibraryOptions options = {}) {
  auto made = DkimLibrary::make(std::move(dns), options);
  BOOST_REQUIRE_MESSAGE(made.has_value(), (made ? std::string() : made.error()));
  return *made;
}

std::vector<DkimSignatureResult> verify(std::shared_ptr<const DkimLibrary> lib, std::string_view message,
                                        std::size_t piece = std::string_view::npos) {
  DkimVerifier verifier(std::move(lib));
  while (!message.empty()) {
    std::string_view part = message.substr(0, piece);
    verifier.feed(part);
    message.remove_prefix(part.size());
  }
  std::string error;
  auto results = verifier.finish(error);
  BOOST_TEST(error.empty(), error);
  return results;
}

const DkimSignatureResult& bySelector(const std::vector<DkimSignatureResult>& results, const std::string& selector) {
  for (const auto& result : results)
    if (result.selector == selector) return result;
  BOOST_FAIL("no signature with s=" + selector);
  return results.front();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dkim_verifier)

BOOST_AUTO_TEST_CASE(rfc8463_example_verifies_with_both_algorithms) {
  auto results = verify(library(football()), rfc8463Message());
  BOOST_REQUIRE_EQUAL(results.size(), 2u);
  const auto& ed = bySelector(results, "brisbane");
  BOOST_TEST(ed.result == "pass", ed.reason);
  BOOST_TEST(ed.algorithm == "ed25519-sha256");
  BOOST_TEST(ed.domain == "football.example.com");
  BOOST_TEST(ed.b.size() >= 8u);
  const auto& rsa = bySelector(results, "test");
  BOOST_TEST(rsa.result == "pass", rsa.reason);
  BOOST_TEST(rsa.algorithm == "rsa-sha256");
  BOOST_TEST(rsa.key_bits == 1024u);
  BOOST_TEST(ed.b != rsa.b);
}

BOOST_AUTO_TEST_CASE(pieces_of_any_size_give_the_same_results) {
  // The message arrives in whatever pieces the network gives: header fields and lines split
  // anywhere, the header/body boundary inside a piece or between two.
  const std::string message = rfc8463Message();
  auto lib = library(football());
  for (std::size_t piece : {1u, 2u, 3u, 7u, 64u, 100u, 333u, 512u}) {
    BOOST_TEST_CONTEXT("pieces of " << piece) {
      auto results = verify(lib, message, piece);
      BOOST_REQUIRE_EQUAL(results.size(), 2u);
      BOOST_TEST(results[0].result == "pass");
      BOOST_TEST(results[1].result == "pass");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_changed_body_fails_on_its_body_hash) {
  std::string message = rfc8463Message();
  message.replace(message.find("Joe."), 4, "Jim.");
  auto results = verify(library(football()), message);
  BOOST_REQUIRE_EQUAL(results.size(), 2u);
  for (const auto& result : results) {
    BOOST_TEST(result.result == "fail");
    BOOST_TEST(result.reason == "body hash did not verify");
  }
}

BOOST_AUTO_TEST_CASE(an_rsa_key_is_decoded_once_and_then_reused) {
  auto lib = library(football());
  BOOST_TEST(bySelector(verify(lib, rfc8463Message()), "test").result == "pass");
  std::size_t hits = publicKeyCacheHits();
  BOOST_TEST(cachedPublicKeys() >= 1u);
  BOOST_TEST(bySelector(verify(lib, rfc8463Message()), "test").result == "pass");
  BOOST_TEST(publicKeyCacheHits() > hits);
  // A different key under the same name is a different DER: decoded afresh, and it fails.
  std::string other = test_key;
  other[other.size() - 12] = other[other.size() - 12] == 'A' ? 'B' : 'A';
  auto changed = verify(library(football(brisbane_key, other.c_str())), rfc8463Message());
  BOOST_TEST(bySelector(changed, "test").result != "pass");
}

BOOST_AUTO_TEST_CASE(a_changed_signed_header_fails_the_signature) {
  std::string message = rfc8463Message();
  message.replace(message.find("Subject: Is dinner ready?"), 25, "Subject: Is dinner late?");
  auto results = verify(library(football()), message);
  BOOST_REQUIRE_EQUAL(results.size(), 2u);
  for (const auto& result : results) BOOST_TEST(result.result == "fail");
}

BOOST_AUTO_TEST_CASE(missing_revoked_and_unreachable_keys) {
  auto missing = verify(library(football(brisbane_key, nullptr)), rfc8463Message());
  BOOST_TEST(bySelector(missing, "brisbane").result == "pass");
  BOOST_TEST(bySelector(missing, "test").result == "permerror");
  BOOST_TEST(bySelector(missing, "test").reason == "no key for this signature");

  auto revoked = verify(library(football(brisbane_key, "v=DKIM1; k=rsa; p=")), rfc8463Message());
  BOOST_TEST(bySelector(revoked, "test").result == "permerror");
  BOOST_TEST(bySelector(revoked, "test").reason == "key revoked");

  auto dns = football(brisbane_key, nullptr);
  dns->addTimeout("test._domainkey.football.example.com");
  auto timed_out = verify(library(dns), rfc8463Message());
  BOOST_TEST(bySelector(timed_out, "test").result == "temperror");

  auto failing = football(brisbane_key, nullptr);
  failing->addServFail("test._domainkey.football.example.com");
  auto servfail = verify(library(failing), rfc8463Message());
  BOOST_TEST(bySelector(servfail, "test").result == "temperror");  // not "no key": it may exist
}

BOOST_AUTO_TEST_CASE(a_key_record_that_does_not_parse_is_a_permerror) {
  auto results = verify(library(football(brisbane_key, "v=DKIM1; k=rsa; p=%%%not-base64%%%")), rfc8463Message());
  BOOST_TEST(bySelector(results, "test").result == "permerror");
}

BOOST_AUTO_TEST_CASE(max_signatures_bounds_the_work) {
  DkimLibraryOptions options;
  options.max_signatures = 1;
  auto dns = football();
  auto results = verify(library(dns, options), rfc8463Message());
  BOOST_TEST(results.size() == 1u);
  BOOST_TEST(dns->queries() == 1u);  // the second signature's key was never asked for
}

BOOST_AUTO_TEST_CASE(an_unsigned_message_has_no_results_and_no_lookups) {
  auto dns = football();
  auto results = verify(library(dns), "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n");
  BOOST_TEST(results.empty());
  BOOST_TEST(dns->queries() == 0u);
}

BOOST_AUTO_TEST_CASE(a_header_section_that_never_ends_is_bounded) {
  DkimVerifier verifier(library(football()));
  std::string line = "X-Filler: " + std::string(900, 'x') + "\r\n";
  for (std::size_t sent = 0; sent <= DkimVerifier::max_header_octets; sent += line.size()) verifier.feed(line);
  std::string error;
  auto results = verifier.finish(error);
  BOOST_TEST(results.empty());
  BOOST_TEST(error == "header section too long to verify");
}

BOOST_AUTO_TEST_CASE(from_fields_are_collected_for_the_author_domain) {
  DkimVerifier verifier(library(football()));
  verifier.feed(rfc8463Message());
  BOOST_REQUIRE_EQUAL(verifier.fromFields().size(), 1u);
  BOOST_TEST(verifier.fromFields()[0] == " Joe SixPack <joe@football.example.com>");
}

// RFC 6376 §3.5: a key published under any name verifies, so d=, s= and i= are held to their
// grammar: a signature whose identifiers are not valid is a permerror, cryptography or not.
BOOST_AUTO_TEST_CASE(signatures_with_invalid_identifiers_are_permerrors) {
  auto dns = std::make_shared<test::MemoryDns>();
  dns->addTxt("sel._domainkey.legitimate.com", {identifiers_key});
  dns->addTxt("sel._domainkey.legitimate.com(.attacker.com", {identifiers_key});
  dns->addTxt("sel(x._domainkey.legitimate.com", {identifiers_key});
  auto lib = library(dns);
  auto valid = verify(lib, dataMessage("identifiers-valid.eml"));
  BOOST_REQUIRE_EQUAL(valid.size(), 1u);
  BOOST_TEST(valid[0].result == "pass", valid[0].reason);  // the same key and message, signed well
  struct Case {
    const char* file;
    const char* domain;
    const char* selector;
    const char* reason;
  };
  for (const Case& bad : {Case{"identifiers-bad-d.eml", "legitimate.com(.attacker.com", "sel", "d= is not a valid domain name"},
                          Case{"identifiers-bad-s.eml", "legitimate.com", "sel(x", "s= is not a valid selector"},
                          Case{"identifiers-bad-i.eml", "legitimate.com", "sel",
                               "i= is not an address within d="}}) {
    BOOST_TEST_CONTEXT(bad.file) {
      auto results = verify(lib, dataMessage(bad.file));
      BOOST_REQUIRE_EQUAL(results.size(), 1u);
      BOOST_TEST(results[0].domain == bad.domain);
      BOOST_TEST(results[0].selector == bad.selector);
      BOOST_TEST(results[0].result == "permerror");
      BOOST_TEST(results[0].reason == bad.reason);
    }
  }
}

BOOST_AUTO_TEST_CASE(results_are_classified_as_rfc8601_and_rfc8301_say) {
  auto classify = [](DkimSignatureFacts facts) {
    DkimSignatureResult out;
    classifyDkimSignature(facts, out);
    return out.result;
  };
  BOOST_TEST(classify({true, true, false, DKIM_SIGERROR_OK, DKIM_SIGN_RSASHA256}) == "pass");
  BOOST_TEST(classify({true, true, false, DKIM_SIGERROR_OK, DKIM_SIGN_ED25519SHA256}) == "pass");
  BOOST_TEST(classify({true, true, false, DKIM_SIGERROR_OK, DKIM_SIGN_RSASHA1}) == "policy");
  BOOST_TEST(classify({false, false, false, DKIM_SIGERROR_KEYTOOSMALL, DKIM_SIGN_RSASHA256}) == "policy");
  BOOST_TEST(classify({true, false, true, DKIM_SIGERROR_OK, DKIM_SIGN_RSASHA256}) == "fail");
  BOOST_TEST(classify({true, false, false, DKIM_SIGERROR_BADSIG, DKIM_SIGN_RSASHA256}) == "fail");
  BOOST_TEST(classify({false, false, false, DKIM_SIGERROR_KEYFAIL, DKIM_SIGN_RSASHA256}) == "temperror");
  BOOST_TEST(classify({false, false, false, DKIM_SIGERROR_NOKEY, DKIM_SIGN_RSASHA256}) == "permerror");
  BOOST_TEST(classify({false, false, false, DKIM_SIGERROR_KEYREVOKED, DKIM_SIGN_RSASHA256}) == "permerror");
  BOOST_TEST(classify({false, false, false, DKIM_SIGERROR_EXPIRED, DKIM_SIGN_RSASHA256}) == "permerror");
  BOOST_TEST(classify({false, false, false, DKIM_SIGERROR_MISSING_B, DKIM_SIGN_RSASHA256}) == "permerror");
  BOOST_TEST(classify({false, false, false, DKIM_SIGERROR_UNKNOWN, DKIM_SIGN_RSASHA256}) == "neutral");
}

BOOST_AUTO_TEST_CASE(built_answer_packets_read_back) {
  DnsRecordSet set;
  set.status = DnsStatus::Ok;
  set.txt = {std::string(300, 'k'), "short"};  // the first needs two character-strings
  std::string packet = dnsAnswerPacket("sel._domainkey.example.com", dns_type::TXT, set);
  DnsRecordSet read;
  auto rcode = addAnswerSection(read, packet, dns_type::TXT);
  BOOST_REQUIRE(rcode.has_value());
  BOOST_TEST(*rcode == 0);
  BOOST_TEST(read.txt == set.txt);
  DnsRecordSet missing;
  missing.status = DnsStatus::NxDomain;
  DnsRecordSet read_missing;
  auto missing_rcode = addAnswerSection(read_missing, dnsAnswerPacket("x.example.com", dns_type::TXT, missing), dns_type::TXT);
  BOOST_TEST(missing_rcode.value_or(-1) == 3);
  BOOST_TEST(dnsAnswerPacket("bad..name", dns_type::TXT, missing).empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
