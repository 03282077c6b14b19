// libFuzzer target for the header fields the gateway writes and the ones it takes out
// (tests/fuzz/README.md): filters/header_text (quoted, printable, propertyValue), the SPF and
// DKIM stages' Received-SPF and Authentication-Results entries (SpfStage::decide and
// DkimStage::decide on outcomes made of fuzzed text), the shared Authentication-Results header
// (authenticationResultsHeader), our Received: header, and, on the message, omittedHeaderFields()
// with the OutgoingMessage that leaves those fields out. Read with FuzzedDataProvider: strings
// from the input's start, choices from its end, the message is what remains. Each header written
// is read back with header_grammar.h (RFC 5322 and RFC 8601 as a downstream reads them).
// Findings, besides crashes and sanitizer reports:
//  - quoted() not one quoted-string holding the printable text; printable() with a character
//    other than printable ASCII, over its bound, or, for a comment, text that does not stay inside
//    "(...)" as one comment; propertyValue() neither the text as a token nor a quoted-string;
//  - a header with a CR, LF or control character outside a fold, an unbalanced comment, or an
//    Authentication-Results value that does not parse, or parses into other resinfos than the
//    stages wrote (an injected ';' or method), or whose authserv-id is not ours; a Received-SPF
//    whose envelope-from or helo reads back as something else than was sent;
//  - a field whose authserv-id (read by the RFCs) is ours that passes, a field that is not ours or
//    not named for replacement that is taken out, ranges that are unsorted, overlapping, outside
//    the header section or not whole fields; an OutgoingMessage whose bytes (read in pieces of
//    fuzzed sizes) or size() are not the added headers and the content less those ranges.

#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include "filters/dkim/dkim_stage.h"
#include "filters/header_text.h"
#include "filters/spf/spf_stage.h"
#include "gateway/relay/outgoing_message.h"
#include "gateway/relay/trace_header.h"
#include "gateway/smtp/address.h"
#include "gateway/spool/spool.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/auth_results_check.h"
#include "tests/fuzz/header_grammar.h"

namespace mailgate {
namespace {

using fuzz::require;
namespace grammar = fuzz::header;

constexpr const char* authserv_ids[] = {"mx.test", "MX.Test", "gateway.example.org", "a"};
constexpr const char* replaceable[] = {"X-Spam-Status", "Subject", "Received-SPF", "X-Spam-Flag"};
constexpr const char* client_ips[] = {"192.0.2.1", "2001:db8::1", "::ffff:198.51.100.7"};
constexpr std::string_view dkim_results[] = {"pass", "fail", "policy", "neutral", "temperror", "permerror"};
constexpr const char* dkim_algorithms[] = {"", "rsa-sha256", "rsa-sha1", "ed25519-sha256"};

std::string printableOnly(std::string_view text) {
  std::string out;
  for (unsigned char c : text)
    if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
  return out;
}

void checkHeaderText(std::string_view text, std::size_t max) {
  std::string q = quoted(text);
  std::size_t at = 0;
  auto content = grammar::quotedString(q, at);
  require(content && at == q.size(), "quoted() is not one quoted-string", q);
  require(*content == printableOnly(text), "quoted() does not hold the text's printable characters", q);

  for (bool in_comment : {true, false}) {
    std::string p = printable(text, max, in_comment);
    require(p.size() <= max, "printable() over its bound", p);
    for (char c : p) require(c >= 0x20 && c < 0x7f, "printable() with a character that is not printable ASCII", p);
    if (!in_comment) continue;
    std::string comment = "(" + p + ")";
    require(grammar::skipComment(comment, 0) == comment.size(), "printable() text breaks out of its comment", comment);
  }

  // RFC 8601 §2.2 pvalue: the text itself as a token (or an address), the text quoted, or left out
  // when it cannot be written as it is; never a value the text was not.
  auto written = propertyValue(text);
  bool writable = !text.empty() && text.size() <= 320 &&
                  std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  require(written.has_value() == writable, "propertyValue() left out a writable value or wrote an unwritable one", text);
  if (!written) return;
  const std::string& v = *written;
  if (v.front() != '"') {
    require(v == text, "propertyValue() token is not the text", v);
    for (char c : v) require(grammar::isVchar(c) && std::string_view("()<>,;:\\\"/[]?= ").find(c) == std::string_view::npos,
                             "propertyValue() token with a special character", v);
  } else {
    at = 0;
    auto inner = grammar::quotedString(v, at);
    require(inner && at == v.size(), "propertyValue() neither a token nor a quoted-string", v);
    require(*inner == text, "propertyValue() quoted-string does not read back as the text", v);
  }
}

// A header field as the gateway writes it: "Name: value\r\n", folded only with CRLF + WSP.
std::string unfoldedValue(std::string_view field, std::string_view name) {
  require(field.starts_with(std::string(name) + ": ") && field.ends_with("\r\n"), "header field malformed", field);
  std::string_view value = field.substr(name.size() + 2, field.size() - name.size() - 4);
  auto unfolded = grammar::unfold(value);
  require(unfolded.has_value(), "CR, LF or a control character outside a fold", field);
  return *unfolded;
}

// RFC 7208 §9.1: result FWS [comment FWS] key-value-list; the values of envelope-from and helo
// must read back as sent.
void checkReceivedSpf(const HeaderField& field, const SpfRequest& request) {
  std::string text = unfoldedValue(field.line(), field.name);
  std::size_t at = 0;
  require(grammar::keyword(text, at).has_value(), "Received-SPF without a result", text);
  at = grammar::skipCfws(text, at);
  require(at != std::string::npos, "Received-SPF comment does not end", text);
  while (at < text.size()) {
    auto key = grammar::keyword(text, at);
    require(key && at < text.size() && text[at] == '=', "Received-SPF key-value pair malformed", text);
    ++at;
    std::string value;
    if (at < text.size() && text[at] == '"') {
      auto content = grammar::quotedString(text, at);
      require(content.has_value(), "Received-SPF quoted value does not end", text);
      value = *content;
    } else {
      std::size_t start = at;
      while (at < text.size() && grammar::isVchar(text[at]) && std::string_view(";()\"").find(text[at]) == std::string_view::npos) ++at;
      require(at > start, "Received-SPF value missing", text);
      value = text.substr(start, at - start);
    }
    if (*key == "envelope-from") require(value == printableOnly(request.sender), "envelope-from reads back otherwise", text);
    if (*key == "helo") require(value == printableOnly(request.helo), "helo reads back otherwise", text);
    at = grammar::skipCfws(text, at);
    require(at != std::string::npos, "Received-SPF comment does not end", text);
    if (at < text.size()) {
      require(text[at] == ';', "';' expected between Received-SPF pairs", text);
      at = grammar::skipCfws(text, at + 1);
      require(at != std::string::npos, "Received-SPF comment does not end", text);
    }
  }
}

SpfOutcome spfOutcome(FuzzedDataProvider& provider, const SpfRequest& request) {
  SpfOutcome outcome;
  outcome.result = static_cast<SpfResult>(provider.ConsumeIntegralInRange(0, 6));
  outcome.identity = provider.ConsumeBool() ? "helo" : "mailfrom";
  outcome.domain = outcome.identity == "helo" ? request.helo : request.sender.substr(request.sender.rfind('@') + 1);
  outcome.sender = outcome.identity == "helo" ? "postmaster@" + request.helo : request.sender;
  outcome.reason = provider.ConsumeRandomLengthString(200);     // may quote DNS data
  outcome.mechanism = provider.ConsumeRandomLengthString(100);  // a term of the sender's record
  if (outcome.result == SpfResult::Fail) outcome.explanation = provider.ConsumeRandomLengthString(100);
  return outcome;
}

std::vector<std::string> stageEntries(FuzzedDataProvider& provider, const std::string& helo, const std::string& sender) {
  std::vector<std::string> entries;
  SpfRequest request{client_ips[provider.ConsumeIntegralInRange<std::size_t>(0, std::size(client_ips) - 1)], sender, helo, "mx.test"};
  SpfOutcome outcome = spfOutcome(provider, request);
  SpfStage::Policy spf_policy;
  spf_policy.action.fill(PolicyAction::Tag);
  Verdict spf = SpfStage::decide(outcome, request, spf_policy);
  for (const HeaderField& field : spf.headers) checkReceivedSpf(field, request);
  entries.insert(entries.end(), spf.auth_results.begin(), spf.auth_results.end());

  std::vector<DkimSignatureResult> signatures(provider.ConsumeIntegralInRange(0, 3));
  for (auto& signature : signatures) {
    signature.result = dkim_results[provider.ConsumeIntegralInRange<std::size_t>(0, std::size(dkim_results) - 1)];
    signature.algorithm = dkim_algorithms[provider.ConsumeIntegralInRange<std::size_t>(0, std::size(dkim_algorithms) - 1)];
    signature.domain = provider.ConsumeRandomLengthString(80);  // d= as the signer wrote it
    signature.selector = provider.ConsumeRandomLengthString(80);
    signature.b = provider.ConsumeRandomLengthString(80);
    signature.reason = provider.ConsumeRandomLengthString(80);
  }
  std::string error = provider.ConsumeBool() ? provider.ConsumeRandomLengthString(80) : "";
  DkimStage::Policy dkim_policy;
  dkim_policy.require_author_domain = provider.ConsumeBool();
  Verdict dkim = DkimStage::decide(signatures, error, {sender.substr(sender.rfind('@') + 1)}, dkim_policy);
  entries.insert(entries.end(), dkim.auth_results.begin(), dkim.auth_results.end());
  return entries;
}

void checkReceived(const std::string& helo, const Path& recipient) {
  TraceInfo trace{helo, "192.0.2.1", "mx.test", true, "4Xa9Zt", {recipient}, std::chrono::system_clock::time_point{}};
  std::string field = receivedHeader(trace);
  std::string text = unfoldedValue(field, "Received");
  // RFC 5322 §3.6.7: received-token list, ";" date-time. Every comment must end where it should.
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (text[at] == '"') {
      auto content = grammar::quotedString(text, at);
      require(content.has_value(), "Received: quoted string does not end", field);
      --at;
    } else if (text[at] == '(') {
      std::size_t end = grammar::skipComment(text, at);
      require(end != std::string::npos, "Received: comment does not end", field);
      at = end - 1;
    } else {
      require(text[at] != ')', "Received: ')' outside a comment", field);
    }
  }
  require(std::count(text.begin(), text.end(), ';') >= 1, "Received: without its date", field);
}

// The header section's fields as a reader by RFC 5322 sees them: [begin, end) of each, with its
// name (obs-optional: blanks before the colon allowed) and folded value.
struct Field {
  std::size_t begin, end;
  std::string name;
  std::string value;
};

std::optional<std::vector<Field>> headerFields(std::string_view content) {
  std::vector<Field> fields;
  std::size_t at = 0;
  while (at < content.size()) {
    std::size_t lf = content.find('\n', at);
    if (lf == std::string_view::npos) return std::nullopt;  // no end of the header section seen
    if (lf == at || (lf == at + 1 && content[at] == '\r')) return fields;
    if (grammar::isWsp(content[at])) {
      if (fields.empty()) return std::nullopt;
      fields.back().end = lf + 1;
      fields.back().value += content.substr(at, lf + 1 - at);
    } else {
      std::size_t colon = content.find(':', at);
      if (colon == std::string_view::npos || colon > lf) return std::nullopt;
      std::string_view name = content.substr(at, colon - at);
      while (!name.empty() && grammar::isWsp(name.back())) name.remove_suffix(1);
      fields.push_back({at, lf + 1, std::string(name), std::string(content.substr(colon + 1, lf + 1 - colon - 1))});
    }
    at = lf + 1;
  }
  return std::nullopt;
}

// The spool's files are unlinked as soon as made; the folder goes at exit (never destroyed
// before that, so the exit handler can still read its name).
const std::string& spoolDirectory() {
  static const std::string* directory = [] {
    char name[] = "/tmp/mailgate-header-fuzz-XXXXXX";
    if (mkdtemp(name) == nullptr) std::abort();
    auto* made = new std::string(name);
    std::atexit([] { rmdir(spoolDirectory().c_str()); });
    return made;
  }();
  return *directory;
}

struct MessageChoices {
  std::string authserv_id;
  std::vector<std::string> replaced;
  bool in_memory = true;
  uint32_t read_sizes = 0;  // seeds the sizes of the pieces the message is read in
};

MessageChoices messageChoices(FuzzedDataProvider& provider) {
  MessageChoices choices;
  choices.authserv_id = authserv_ids[provider.ConsumeIntegralInRange<std::size_t>(0, std::size(authserv_ids) - 1)];
  for (const char* name : replaceable)
    if (provider.ConsumeBool()) choices.replaced.emplace_back(name);
  choices.in_memory = provider.ConsumeBool();
  choices.read_sizes = provider.ConsumeIntegral<uint32_t>();
  return choices;
}

void checkOmitted(const MessageChoices& choices, std::string_view content) {
  const std::string& authserv_id = choices.authserv_id;
  const std::vector<std::string>& names = choices.replaced;
  // A small memory limit puts the content in a file, as a large message would be.
  auto spool = std::make_shared<Spool>(spoolDirectory(), choices.in_memory ? 1024 * 1024 : 64);
  require(spool->append(content).has_value(), "harness: the spool refused the content");
  auto omitted = omittedHeaderFields(*spool, authserv_id, names);
  require(omitted.has_value(), "omittedHeaderFields failed on a readable spool");
  const std::vector<ByteRange>& ranges = *omitted;

  auto fields = headerFields(content);
  std::size_t header_end = fields ? (fields->empty() ? 0 : fields->back().end) : content.size();
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    require(ranges[i].begin < ranges[i].end && ranges[i].end <= header_end, "a range outside the header section");
    if (i > 0) require(ranges[i - 1].end <= ranges[i].begin, "ranges unsorted or overlapping");
  }
  if (fields) {
    for (const Field& field : *fields) {
      bool taken = std::any_of(ranges.begin(), ranges.end(), [&](const ByteRange& r) { return r.begin == field.begin && r.end == field.end; });
      bool named = std::any_of(names.begin(), names.end(), [&](const std::string& n) { return equalsIgnoreCase(n, field.name); });
      std::optional<std::string> claimed;
      if (equalsIgnoreCase(field.name, "Authentication-Results")) claimed = grammar::claimedAuthservId(field.value);
      std::string_view text = content.substr(field.begin, field.end - field.begin);
      if (named || (claimed && equalsIgnoreCase(*claimed, authserv_id)))
        require(taken, "a field claiming our authserv-id, or named for replacement, passes", text);
      else if (claimed)
        require(!taken, "another server's Authentication-Results taken out", text);
    }
    for (const ByteRange& range : ranges) {
      bool whole = std::any_of(fields->begin(), fields->end(), [&](const Field& f) { return f.begin == range.begin && f.end == range.end; });
      require(whole, "a range that is not one whole field", content.substr(range.begin, range.end - range.begin));
    }
  }

  std::string added = "Received: from a by b; date\r\n";
  std::string expected = added;
  std::size_t copied_to = 0;
  for (const ByteRange& range : ranges) {
    expected.append(content.substr(copied_to, range.begin - copied_to));
    copied_to = range.end;
  }
  expected.append(content.substr(copied_to));
  OutgoingMessage message(added, spool, ranges);
  require(message.size() == expected.size(), "OutgoingMessage size() is not its bytes'");
  std::string read;
  std::vector<char> buffer(4096);
  uint64_t sizes = choices.read_sizes | 1;
  while (read.size() < expected.size() + 1) {
    sizes = sizes * 6364136223846793005ull + 1442695040888963407ull;  // Knuth's MMIX LCG
    std::size_t want = 1 + (sizes >> 33) % (sizes & (1ull << 62) ? 7 : buffer.size());
    auto count = message.read(read.size(), buffer.data(), want);
    require(count.has_value(), "OutgoingMessage read failed");
    if (*count == 0) break;
    require(*count <= want, "OutgoingMessage read more than asked");
    read.append(buffer.data(), *count);
  }
  require(read == expected, "OutgoingMessage bytes are not the message less the omitted fields", read);
}

}  // namespace
}  // namespace mailgate

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate;
  FuzzedDataProvider provider(data, size);
  checkHeaderText(provider.ConsumeRandomLengthString(300), provider.ConsumeIntegralInRange<std::size_t>(0, 300));

  // What a client can make the gateway write: a HELO argument SmtpSession takes (printable, no
  // blanks) and addresses the address parser accepts.
  std::string helo = provider.ConsumeRandomLengthString(100);
  if (helo.empty() || !std::all_of(helo.begin(), helo.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; })) helo = "client.example";
  auto mail = parseMailCommand("FROM:" + provider.ConsumeRandomLengthString(300));
  std::string sender = mail && !mail->path.null ? mail->path.address() : "user@example.com";
  auto rcpt = parseRcptCommand("TO:" + provider.ConsumeRandomLengthString(300));
  checkReceived(helo, rcpt ? rcpt->path : Path{false, {"bob", "example.org"}});

  std::vector<std::string> entries = stageEntries(provider, helo, sender);
  fuzz::checkAuthenticationResults(authserv_ids[provider.ConsumeIntegralInRange<std::size_t>(0, std::size(authserv_ids) - 1)], entries);

  MessageChoices choices = messageChoices(provider);
  checkOmitted(choices, provider.ConsumeRemainingBytesAsString());
  return 0;
}
