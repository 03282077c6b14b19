#pragma once
// The gateway's own Received: header (RFC 5321 §4.4), prepended to every message it passes on.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "gateway/smtp/address.h"

namespace mailgate {

struct TraceInfo {
  std::string helo;
  std::string client_ip;
  std::string hostname;
  bool esmtp = true;
  std::string id;
  std::vector<Path> recipients;
  std::chrono::system_clock::time_point time;
};

// The client's TLS: "with ESMTPS" (RFC 3848) and Postfix's comment "(using TLSv1.3 with cipher
// TLS_AES_256_GCM_SHA384)".
struct TraceTls {
  std::string version;
  std::string cipher;
};

// The HELO name as the Received: header shows it: a domain has at most 255 octets (RFC 5321
// §4.5.3.1.2), and a longer argument, which a client may send in a 1000-octet command line, is
// cut here so that no header line passes RFC 5322 §2.1.1's 998 octets.
constexpr std::size_t max_trace_helo_octets = 255;

// "Received: from helo ([192.0.2.1])\r\n\tby mx.example.org (mailgate) with ESMTP id X\r\n\tfor
// <a@b>; Tue, 24 Nov 2026 08:00:00 +0000\r\n", folded further where a line would pass 78
// octets. "for" names the recipient only when there is one (RFC 5321 §4.4 warns that more would
// disclose Bcc recipients).
std::string receivedHeader(const TraceInfo& trace, const std::optional<TraceTls>& tls = std::nullopt);

// RFC 5322 §3.3 date-time in UTC: "Wed, 25 Nov 2026 08:18:32 +0000".
std::string rfc5322Date(std::chrono::system_clock::time_point time);

}  // namespace mailgate
