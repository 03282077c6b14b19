#pragma once
// The URIs `uri` rules look at: found in plain text as a mail reader would make them clickable
// (a scheme, or www. / ftp. at a word start, or an e-mail address as mailto:), plus those HTML
// tags point at; each then with the variants SpamAssassin's uri_list_canonicalize() adds (a scheme
// for schemeless ones, %-escapes and &#..; decoded, user info and trailing junk stripped from the
// host, a URI embedded in another's query as a redirect target).
//
// Not done: SpamAssassin's schemeless-domain detection (it needs the registry's list of TLDs) and
// its configured redirector_pattern list (only the hard-coded "http... inside the query" rule).

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace mailgate::rules {

// The URIs of one message, each once, in the order found: at most UriExtractor::max_uris
// distinct ones, so that a link repeated a thousand times cannot hide the one after it.
class UriList {
 public:
  void add(std::string_view uri);
  bool truncated() const { return truncated_; }  // a further distinct URI was left out
  const std::vector<std::string>& uris() const { return uris_; }

 private:
  std::vector<std::string> uris_;
  std::unordered_set<std::string> seen_;
  bool truncated_ = false;
};

class UriExtractor {
 public:
  // Bound per message: a message stuffed with links costs this many, not unbounded time.
  static constexpr std::size_t max_uris = 1000;
  // SpamAssassin's MAX_URI_LENGTH: longer ones are cut.
  static constexpr std::size_t max_uri_length = 8192;

  // URIs written in `text` (rendered UTF-8), added in order (until `out` is truncated).
  static void fromText(std::string_view text, UriList& out);
  // `uri` and its canonical variants, each once, the original first.
  static std::vector<std::string> variants(std::string_view uri);
};

}  // namespace mailgate::rules
