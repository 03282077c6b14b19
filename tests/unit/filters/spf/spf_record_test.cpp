// The strict record validator (filters/spf/spf_record.h), case by case, by the categories of
// issue 3 point 5: (c) domain-specs, (d) record syntax, (e) macros; and what libspf2 is given
// (spf_libspf2_record.h), checked against libspf2's own compiler.

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "gateway/c/spf2.h"
#include "filters/spf/spf_libspf2_record.h"
#include "filters/spf/spf_record.h"

namespace mailgate {
namespace {

std::string errorOf(const std::string& record) {
  SpfParseResult parsed = parseSpfRecord(record);
  return parsed.record ? std::string() : parsed.error;
}

std::string forLibspf2(const std::string& record, int family = AF_INET) {
  SpfParseResult parsed = parseSpfRecord(record);
  BOOST_REQUIRE_MESSAGE(parsed.record, record << ": " << parsed.error);
  Libspf2Record text = recordForLibspf2(*parsed.record, family);
  return text.text ? *text.text : "error: " + text.error;
}

void expectInvalid(const std::vector<std::pair<std::string, std::string>>& cases) {
  for (const auto& [record, reason] : cases) {
    std::string error = errorOf(record);
    BOOST_TEST(!error.empty(), record << " must be refused");
    BOOST_TEST(error.find(reason) != std::string::npos, record << ": \"" << error << "\" lacks \"" << reason << "\"");
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spf_record)

BOOST_AUTO_TEST_CASE(valid_records) {
  for (const std::string& record : std::vector<std::string>{
           "v=spf1", "v=spf1 -all", "V=SpF1 ~ALL", "v=spf1  a  mx   -all ", "v=spf1 a/24//64 mx//0 a/0",
           "v=spf1 ip4:0.0.0.0/0 ip6:::/0 ip4:192.0.2.1/32 ip6:2001:DB8::/32 ip6:::ffff:1.2.3.4",
           "v=spf1 include:_spf.example.com. -all", "v=spf1 exists:%{ir}.%{l1r-}.lp._spf.%{d2} ?all",
           "v=spf1 redirect=_spf.example.com", "v=spf1 exp=explain._spf.%{d} -all",
           "v=spf1 moo.cow-far_out=man:dog/cat -all",  // unknown modifier, name with "." (libspf2 refuses)
           "v=spf1 a:foo:bar/baz.example.com", "v=spf1 a:foo.example.xn--zckzah", "v=spf1 ptr ptr:example.com",
           "v=spf1 a:macro%%percent%_%_space%-url-space.example.com", "v=spf1 exists:%{l2r+-}.user.%{d2}",
           "v=spf1 -exists:%{i}.%{L}.%{DR}.x.example", "v=spf1 a:%{d0004}.%{dR}", "v=spf1 a:%{h}",
           "v=spf1 default=+ op=x.y", "v=spf1 a:1-2.example.1-2"}) {
    BOOST_TEST(errorOf(record).empty(), record << ": " << errorOf(record));
  }
}

BOOST_AUTO_TEST_CASE(structure_of_a_parsed_record) {
  SpfParseResult parsed = parseSpfRecord("v=spf1 ~a:mail.example.com/24//64 -include:x.example ip6:2001:db8::/48 "
                                         "foo=bar redirect=r.example exp=e.example");
  BOOST_REQUIRE(parsed.record);
  const SpfRecord& record = *parsed.record;
  BOOST_REQUIRE(record.mechanisms.size() == 3u);
  BOOST_TEST(static_cast<char>(record.mechanisms[0].qualifier) == '~');
  BOOST_TEST(*record.mechanisms[0].ip4_cidr == 24u);
  BOOST_TEST(*record.mechanisms[0].ip6_cidr == 64u);
  BOOST_TEST(record.mechanisms[1].text == "-include:x.example");
  BOOST_TEST(record.mechanisms[2].address == "2001:db8::");
  BOOST_TEST(*record.mechanisms[2].ip6_cidr == 48u);
  BOOST_TEST(record.redirect.has_value());
  BOOST_TEST(record.exp.has_value());
  BOOST_TEST(record.unknown_modifiers == 1u);
  BOOST_TEST(record.dnsTerms() == 3u);  // a, include, redirect
}

// (c) domain-specs that libspf2 evaluates "with a warning" instead of permerror.
BOOST_AUTO_TEST_CASE(invalid_domain_specs) {
  expectInvalid({
      {"v=spf1 a:", "empty domain-spec"},
      {"v=spf1 mx: -all", "empty domain-spec"},
      {"v=spf1 include: -all", "empty domain-spec"},
      {"v=spf1 exists", "missing domain-spec"},
      {"v=spf1 include", "missing domain-spec"},
      {"v=spf1 a:museum", "does not end in"},
      {"v=spf1 a:museum.", "does not end in"},
      {"v=spf1 a:foo-bar", "does not end in"},
      {"v=spf1 a:abc.123", "invalid toplabel \"123\""},
      {"v=spf1 a:111.222.33.44", "invalid toplabel \"44\""},
      {"v=spf1 a:example.-com", "invalid toplabel \"-com\""},
      {"v=spf1 a:example.com:8080", "invalid toplabel"},
      {"v=spf1 exists:mail.example.com/24", "invalid toplabel \"com/24\""},
      {"v=spf1 include:ip5.example.com/24", "invalid toplabel"},
      {"v=spf1 a:mail.example...com", "not a valid domain name"},
      {"v=spf1 a:" + std::string(64, 'a') + ".example.com", "not a valid domain name"},
      {"v=spf1 a:" + std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + "." +
           std::string(60, 'd') + ".example.com",
       "not a valid domain name"},
      {std::string("v=spf1 a:foo.example.com\0", 25), "control character 0x00"},
      {"v=spf1 a:ctrl.example.com\rptr -all", "control character 0x0D"},
      {"v=spf1 ptr/0", "unexpected \"/0\""},
  });
}

// (d) record syntax libspf2 accepts but must not.
BOOST_AUTO_TEST_CASE(invalid_record_syntax) {
  expectInvalid({
      {"v=spf1 exp= -all", "exp=: empty domain-spec"},
      {"v=spf1 ?all redirect=", "redirect=: empty domain-spec"},
      {"v=spf1 exp=a.example.com -all exp=b.example.com", "exp= appears twice"},
      {"v=spf1 redirect=a.example.com -all redirect=b.example.com", "redirect= appears twice"},
      {"v=spf1 redirect=-all ?all", "redirect=: domain-spec \"-all\""},
      {"v=spf1 exp=-all", "exp=: domain-spec"},
      {"v=spf1 ip4:1.2.3.4 redirect:t2.example.com", "unknown mechanism \"redirect:t2.example.com\""},
      {"v=spf1 ip4:1.2.3.4/032 -all", "leading zero"},
      {"v=spf1 a/032", "leading zero"},
      {"v=spf1 a/33", "/33 exceeds 32"},
      {"v=spf1 mx//129", "/129 exceeds 128"},
      {"v=spf1 ip6:::1/129", "/129 exceeds 128"},
      {"v=spf1 a/24/64", "exceeds 32"},
      {"v=spf1 ip4:1.2.3.4//32", "dual CIDR"},
      {"v=spf1 ip6:::1//33", "dual CIDR"},
      {"v=spf1 ip4:1.2.03.4", "invalid ip4-network"},
      {"v=spf1 ip4:256.1.1.1", "invalid ip4-network"},
      {"v=spf1 ip4:1.2.3", "invalid ip4-network"},
      {"v=spf1 ip4:1.2.3.4:8080", "invalid ip4-network"},
      {"v=spf1 ip6::CAFE::BABE", "invalid ip6-network"},
      {"v=spf1 -all ip6", "needs \":\""},
      {"v=spf1 1up=foo", "unknown mechanism \"1up=foo\""},
      {"v=spf1 =all", "unknown mechanism \"=all\""},
      {"v=spf1 moo.cow/far_out=man:dog/cat", "unknown mechanism"},
      {"v=spf1 moo", "unknown mechanism \"moo\""},
      {"v=spf1 -all.", "\"all\" takes no argument"},
      {"v=spf1 -all:foobar", "\"all\" takes no argument"},
      {"v=spf1 -all/8", "\"all\" takes no argument"},
      {"v=spf1\ta -all", "control character 0x09"},
      {"v=spf1 a:\xEF\xBB\xBFgarbage.example.net -all", "non-ASCII byte 0xEF"},
      {"v=spf1 \x80" "a:example.net -all", "non-ASCII byte 0x80"},
      {"v=spf10", "not a \"v=spf1\" record"},
  });
}

// (e) macro syntax errors.
BOOST_AUTO_TEST_CASE(invalid_macros) {
  expectInvalid({
      {"v=spf1 -exists:%(ir).sbl.example.com ?all", "'%' followed by '('"},
      {"v=spf1 exists:foo%.sbl.example.com", "'%' followed by '.'"},
      {"v=spf1 exists:foo.example.com%", "'%' at the end"},
      {"v=spf1 a:%{a}.example.com", "unknown macro letter"},
      {"v=spf1 a:%{d0}.example.com", "transformer 0"},
      {"v=spf1 a:%{dr2}.example.com", "malformed macro-expand"},
      {"v=spf1 a:%{d|}.example.com", "malformed macro-expand"},
      {"v=spf1 a:%{d.example.com", "malformed macro-expand"},
      {"v=spf1 a:%{c}.example.com", "only in explanation text"},
      {"v=spf1 -all exp=%{r}.example.com", "only in explanation text"},
      {"v=spf1 a:%{t}.example.com", "only in explanation text"},
      {"v=spf1 -all foo=%abc", "modifier foo=: '%' followed by 'a'"},
      {"v=spf1 -all foo=%{c}", "only in explanation text"},
  });
}

BOOST_AUTO_TEST_CASE(explanation_text_allows_spaces_and_crt) {
  std::string error;
  BOOST_TEST(parseMacroString("Connections from %{c} at %{t} to %{r} not authorized.", MacroUse::Explanation, error)
                 .has_value());
  BOOST_TEST(!parseMacroString("The %{x}-files.", MacroUse::Explanation, error).has_value());
  BOOST_TEST(!parseMacroString("has a space", MacroUse::Record, error).has_value());
}

BOOST_AUTO_TEST_CASE(record_selection) {
  std::vector<std::string> txt = {"v=spf1 -all", "v=spf10", "V=SPF1", "v=spf1mx", "\x96", "spf1", "google-site"};
  std::vector<std::string_view> selected = selectSpfRecords(txt);
  BOOST_REQUIRE(selected.size() == 2u);
  BOOST_TEST(selected[0] == "v=spf1 -all");
  BOOST_TEST(selected[1] == "V=SPF1");
}

BOOST_AUTO_TEST_CASE(macro_expansion) {
  MacroValues values;
  values.s = "strong-bad@email.example.com";
  values.l = "strong-bad";
  values.o = "email.example.com";
  values.d = "email.example.com";
  values.i = "192.0.2.3";
  values.v = "in-addr";
  auto expand = [&](const char* text) {
    std::string error;
    auto macro = parseMacroString(text, MacroUse::Explanation, error);
    BOOST_REQUIRE_MESSAGE(macro, text << ": " << error);
    return expandMacroString(*macro, values);
  };
  // RFC 7208 §7.4's examples.
  BOOST_TEST(expand("%{d4}") == "email.example.com");
  BOOST_TEST(expand("%{d2}") == "example.com");
  BOOST_TEST(expand("%{d1}") == "com");
  BOOST_TEST(expand("%{dr}") == "com.example.email");
  BOOST_TEST(expand("%{d2r}") == "example.email");
  BOOST_TEST(expand("%{l-}") == "strong.bad");
  BOOST_TEST(expand("%{lr-}") == "bad.strong");
  BOOST_TEST(expand("%{l1r-}") == "strong");
  BOOST_TEST(expand("%{ir}.%{v}._spf.%{d2}") == "3.2.0.192.in-addr._spf.example.com");
  BOOST_TEST(expand("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}") == "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
  BOOST_TEST(expand("%%%_%-") == "% %20");
  values.l = "~jack&jill=up-a_b3.c";
  BOOST_TEST(expand("%{L}") == "~jack%26jill%3Dup-a_b3.c");  // only RFC 3986 unreserved stay
}

// What libspf2 is given: redirect last and only without "all", exp= and unknown modifiers gone,
// /0 said in a way libspf2 understands, one CIDR length per client family.
BOOST_AUTO_TEST_CASE(text_for_libspf2) {
  BOOST_TEST(forLibspf2("v=spf1 ip4:1.1.1.1/0 -all") == "v=spf1 +ip4:0.0.0.0/1 +ip4:128.0.0.0/1 -all");
  BOOST_TEST(forLibspf2("v=spf1 ~ip6:::1.1.1.1/0") == "v=spf1 ~ip6:::/1 ~ip6:8000::/1");
  BOOST_TEST(forLibspf2("v=spf1 redirect=r.example.com a") == "v=spf1 +a redirect=r.example.com");
  BOOST_TEST(forLibspf2("v=spf1 redirect=r.example.com ~all") == "v=spf1 ~all");
  BOOST_TEST(forLibspf2("v=spf1 exp=e.%{d} moo.cow=bar -all") == "v=spf1 -all");
  BOOST_TEST(forLibspf2("v=spf1 a/24//64 MX:x.example//48") == "v=spf1 +a/24 +mx:x.example");
  BOOST_TEST(forLibspf2("v=spf1 a/24//64 MX:x.example//48", AF_INET6) == "v=spf1 +a//64 +mx:x.example//48");
  BOOST_TEST(forLibspf2("v=spf1 mx/0") == "v=spf1 +mx:%{d}" + std::string(kZeroCidrMarker));
  BOOST_TEST(forLibspf2("v=spf1 a:x.example//0", AF_INET6) == "v=spf1 +a:x.example" + std::string(kZeroCidrMarker));
  BOOST_TEST(forLibspf2("v=spf1 exists:%{D02R}.%{d200}.x.example") == "v=spf1 +exists:%{D2r}.%{d128}.x.example");
  BOOST_TEST(forLibspf2("v=spf1 exists:%{l,}.x.example").starts_with("error: a macro delimiter"));
}

// libspf2 refuses records whose mechanisms compile to more than 511 bytes (SPF_E_BIG_MECH).
BOOST_AUTO_TEST_CASE(records_too_large_for_libspf2) {
  std::string record = "v=spf1";
  for (int i = 0; i < 30; ++i) record += " ip6:2001:db8:" + std::to_string(i) + "::/48";
  BOOST_TEST(forLibspf2(record).find("more mechanisms than libspf2 can hold") != std::string::npos);
}

// CVE-2023-42118: 127 macros then a long literal underflow libspf2's ds_avail and smash its stack
// (checked by hand on Debian's 1.2.10-7.2: "*** stack smashing detected ***"). Such terms are
// refused before libspf2 sees them.
BOOST_AUTO_TEST_CASE(cve_2023_42118_shapes_are_refused) {
  std::string macros;
  for (int i = 0; i < 127; ++i) macros += "%{d}";
  for (const std::string& term : {"exists:" + macros + std::string(4000, 'A') + ".com",
                                  "a:" + macros + std::string(100, 'A') + ".com",
                                  "redirect=" + macros.substr(0, 4 * 70) + ".example.com",
                                  "include:" + std::string(250, 'a') + "%{d}.com"}) {
    BOOST_TEST(forLibspf2("v=spf1 " + term).find("CVE-2023-42118") != std::string::npos, term.substr(0, 40));
  }
  BOOST_TEST(forLibspf2("v=spf1 exists:" + macros.substr(0, 4 * 40) + ".example.com").starts_with("v=spf1"));
}

// The size model behind the CVE guard is libspf2's: its compiler agrees on every byte.
BOOST_AUTO_TEST_CASE(compiled_size_matches_libspf2) {
  Spf2Server server(SPF_server_new(SPF_DNS_ZONE, 0));
  BOOST_REQUIRE(server);
  for (const std::string& record : std::vector<std::string>{
           "v=spf1 -all", "v=spf1 a mx ptr", "v=spf1 a/24 mx:x.example/16 a:y.example/32",
           "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip4:1.1.1.1/0",
           "v=spf1 exists:%{ir}.%{l1r-}.lp._spf.%{d2} include:a.example redirect=%{d}.b.example",
           "v=spf1 a:macro%%percent%_%_space%-url-space.example.com ptr:%{p}.x.example",
           "v=spf1 exists:%{d}." + std::string(63, 'x') + "." + std::string(63, 'y') + ".example",
           "v=spf1 mx/0 a//0"}) {
    for (int family : {AF_INET, AF_INET6}) {
      SpfParseResult parsed = parseSpfRecord(record);
      BOOST_REQUIRE_MESSAGE(parsed.record, record << ": " << parsed.error);
      Libspf2Record text = recordForLibspf2(*parsed.record, family);
      BOOST_REQUIRE(text.text);
      Spf2Response response(SPF_response_new(nullptr));
      SPF_record_t* raw = nullptr;
      SPF_errcode_t error = SPF_record_compile(server.get(), response.get(), &raw, text.text->c_str());
      Spf2Record compiled(raw);
      BOOST_TEST(error == SPF_E_SUCCESS, *text.text << ": " << SPF_strerror(error));
      if (compiled) BOOST_TEST(compiled->mech_len == text.compiled_bytes, *text.text);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
