#pragma once
// The registered domains of the links in a message, for the URI lists (`uri_zones`: SURBL, URIBL,
// Spamhaus DBL), which list registered domains, not host names: links are found the way the
// rule engine's `uri` rules find them (rules/message_view.h: text and HTML parts, decoded), and
// each host is cut to its registered domain by the public suffix list (the DMARC stage's).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate {

// The host of a URI ("http://user@Www.Example.COM:80/x" → "www.example.com"; "mailto:a@b.example"
// → "b.example"), or "" when it has none or it is an address literal (those lists list names).
std::string uriHost(std::string_view uri);

// The registered domains of the message's links, each once, in the order found, at most `limit`.
std::vector<std::string> uriDomains(std::string_view raw_message, std::size_t limit);

}  // namespace mailgate
