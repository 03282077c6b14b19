// libFuzzer target for the PROXY protocol parser, versions 1 and 2 (tests/fuzz/README.md). The
// input is the start of a connection. parseProxyHeader() is called on it and on each of its
// prefixes, as bytes arriving in pieces would be seen. Findings, besides crashes and sanitizer
// reports:
//  - a header longer than the bytes it came from, longer than max_proxy_header_octets, or empty;
//  - a source address that is not an IPv4 or IPv6 address in text form (inet_pton refuses it),
//    or, for v1, not the address as written in the line;
//  - "more bytes needed" for max_proxy_header_octets bytes or more (a peer could hold the
//    connection open forever without sending a header);
//  - an answer that changes as more bytes arrive after it was given: a header for a prefix must be
//    the same header for the whole, and an error must stay an error.

#include <arpa/inet.h>

#include <algorithm>
#include <string>

#include "gateway/net/proxy_protocol.h"
#include "tests/fuzz/fuzz_support.h"

namespace mailgate {
namespace {

using fuzz::require;

bool sameHeader(const ProxyHeader& a, const ProxyHeader& b) {
  return a.length == b.length && a.source_ip == b.source_ip && a.source_port == b.source_port;
}

void checkHeader(const ProxyHeader& header, std::string_view bytes) {
  require(header.length > 0, "empty header");
  require(header.length <= bytes.size(), "header longer than its bytes");
  require(header.length <= max_proxy_header_octets, "header over max_proxy_header_octets");
  if (!header.source_ip) return;
  unsigned char address[16];
  const std::string& ip = *header.source_ip;
  bool v4 = inet_pton(AF_INET, ip.c_str(), address) == 1;
  bool v6 = inet_pton(AF_INET6, ip.c_str(), address) == 1;
  require(v4 || v6, "source address is not an IP address", ip);
  if (bytes.starts_with("PROXY ")) {
    std::string_view line = bytes.substr(0, header.length);
    require(line.ends_with("\r\n"), "v1 header does not end with its CRLF", line);
    require(line.find(" " + ip + " ") != std::string_view::npos, "v1 source address not as written", line);
  }
}

}  // namespace
}  // namespace mailgate

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate;
  std::string_view whole(reinterpret_cast<const char*>(data), size);
  auto final_answer = parseProxyHeader(whole);
  if (final_answer && *final_answer) checkHeader(**final_answer, whole);
  if (final_answer && !*final_answer)
    fuzz::require(size < max_proxy_header_octets, "more bytes asked for past max_proxy_header_octets");

  // The answer for each prefix, as the bytes would arrive: once decided, it must not change.
  std::size_t limit = std::min(size, max_proxy_header_octets + 16);
  for (std::size_t length = 0; length <= limit; ++length) {
    std::string_view prefix = whole.substr(0, length);
    auto answer = parseProxyHeader(prefix);
    if (answer && !*answer) {
      fuzz::require(length < max_proxy_header_octets, "more bytes asked for past max_proxy_header_octets");
      continue;
    }
    if (answer) {
      checkHeader(**answer, prefix);
      fuzz::require(final_answer && *final_answer && sameHeader(**answer, **final_answer),
                    "a header for a prefix is not the header for the whole", prefix);
    } else {
      fuzz::require(!final_answer, "an error for a prefix, none for the whole", prefix);
      fuzz::require(!answer.error().empty(), "an error without a reason");
    }
    break;
  }
  return 0;
}
