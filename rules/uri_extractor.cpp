#include "rules/uri_extractor.h"
#include "gateway/util/ascii.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace mailgate::rules {
namespace {

bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (asciiLower(text[i]) != prefix[i]) return false;
  return true;
}

// Thunderbird's end delimiters, which SpamAssassin follows: ><"`}]{[| whitespace ESC NBSP.
bool endsUri(std::string_view text, std::size_t at) {
  unsigned char c = static_cast<unsigned char>(text[at]);
  if (c <= ' ' || c == 0x1b || c == 0x7f) return true;
  if (c == 0xc2 && at + 1 < text.size() && static_cast<unsigned char>(text[at + 1]) == 0xa0) return true;
  return std::string_view("><\"`}]{[|").find(static_cast<char>(c)) != std::string_view::npos;
}

// Length of a URI start at `text` ("http://", "www2.", "mailto:", ...), 0 when none.
std::size_t uriStart(std::string_view text) {
  for (std::string_view scheme : {"https:", "http:", "ftp:", "file:"}) {
    if (startsWithNoCase(text, scheme) && text.size() > scheme.size() && text[scheme.size()] == '/') return scheme.size();
  }
  if (startsWithNoCase(text, "mailto:")) return 7;
  if (startsWithNoCase(text, "ftp.")) return 4;
  if (startsWithNoCase(text, "www")) {
    std::size_t at = 3;
    while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) ++at;
    if (at < text.size() && text[at] == '.') return at + 1;
  }
  return 0;
}

bool isLocalPartChar(char c) { return isAlnum(c) || std::string_view("._%+-=").find(c) != std::string_view::npos; }
bool isDomainChar(char c) { return isAlnum(c) || c == '.' || c == '-'; }

int hexValue(char c) {
  if (std::isdigit(static_cast<unsigned char>(c))) return c - '0';
  c = asciiLower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// %XX of unreserved characters (RFC 3986 §2.3) decoded: they mean the same either way, and
// spammers escape them to hide a host from naive matching.
std::string decodeUnreserved(std::string_view uri) {
  std::string out;
  for (std::size_t i = 0; i < uri.size(); ++i) {
    if (uri[i] == '%' && i + 2 < uri.size() && hexValue(uri[i + 1]) >= 0 && hexValue(uri[i + 2]) >= 0) {
      char c = static_cast<char>(hexValue(uri[i + 1]) * 16 + hexValue(uri[i + 2]));
      if (isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
        out += c;
        i += 2;
        continue;
      }
    }
    out += uri[i];
  }
  return out;
}

// &#46; &#x2e; and friends for printable ASCII, and the ideographic full stops as '.'.
std::string decodeNumericReferences(std::string_view uri) {
  std::string out;
  for (std::size_t i = 0; i < uri.size(); ++i) {
    if (uri[i] == '&' && i + 2 < uri.size() && uri[i + 1] == '#') {
      std::size_t j = i + 2;
      bool hex = j < uri.size() && (uri[j] == 'x' || uri[j] == 'X');
      if (hex) ++j;
      unsigned long value = 0;
      std::size_t digits = j;
      while (j < uri.size() && (hex ? hexValue(uri[j]) >= 0 : std::isdigit(static_cast<unsigned char>(uri[j]))) && j - digits < 8)
        value = value * (hex ? 16 : 10) + static_cast<unsigned long>(hexValue(uri[j++]));
      if (j > digits && j < uri.size() && uri[j] == ';') {
        if (value >= 0x21 && value <= 0x7e) {
          out += static_cast<char>(value);
          i = j;
          continue;
        }
        if (value == 12290 || value == 65294 || value == 65377) {
          out += '.';
          i = j;
          continue;
        }
      }
    }
    out += uri[i];
  }
  return out;
}

void addOnce(std::vector<std::string>& list, std::string value) {
  if (value.size() > UriExtractor::max_uri_length) value.resize(UriExtractor::max_uri_length);
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

}  // namespace

void UriList::add(std::string_view uri) {
  uri = uri.substr(0, UriExtractor::max_uri_length);
  if (truncated_ || seen_.contains(std::string(uri))) return;
  if (uris_.size() >= UriExtractor::max_uris) {
    truncated_ = true;
    return;
  }
  seen_.emplace(uri);
  uris_.emplace_back(uri);
}

void UriExtractor::fromText(std::string_view text, UriList& out) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (std::size_t i = 0; i < text.size() && !out.truncated(); ++i) {
    // Every start uriStart() knows begins with one of these: most octets are passed at this test.
    char first = asciiLower(text[i]);
    if (first != 'h' && first != 'f' && first != 'm' && first != 'w') continue;
    // A URI starts at a word start, never inside a word or another URI.
    if (i > 0 && (isAlnum(text[i - 1]) || std::string_view("._-/@:%+=&").find(text[i - 1]) != std::string_view::npos)) continue;
    std::size_t prefix = uriStart(text.substr(i));
    if (prefix == 0) continue;
    std::size_t end = i + prefix;
    while (end < text.size() && !endsUri(text, end)) ++end;
    std::string_view uri = text.substr(i, end - i);
    // ')' ends it only when no '(' is in it; trailing punctuation is the sentence's, not the URI's.
    if (uri.find('(') == std::string_view::npos && uri.find(')') != std::string_view::npos) uri = uri.substr(0, uri.find(')'));
    while (uri.size() > prefix && std::string_view(".,?';-!:").find(uri.back()) != std::string_view::npos) uri.remove_suffix(1);
    if (uri.size() <= prefix) continue;
    out.add(uri);
    spans.emplace_back(i, i + uri.size());
    i += uri.size() - 1;
  }
  // E-mail addresses in text are mailto: links to a reader.
  for (std::size_t at = text.find('@'); at != std::string_view::npos && !out.truncated(); at = text.find('@', at + 1)) {
    bool inside = std::any_of(spans.begin(), spans.end(), [at](const auto& span) { return at >= span.first && at < span.second; });
    if (inside) continue;
    std::size_t begin = at;
    while (begin > 0 && isLocalPartChar(text[begin - 1])) --begin;
    std::size_t end = at + 1;
    while (end < text.size() && isDomainChar(text[end])) ++end;
    while (end > at + 1 && (text[end - 1] == '.' || text[end - 1] == '-')) --end;
    std::string_view domain = text.substr(at + 1, end - at - 1);
    std::size_t dot = domain.rfind('.');
    if (begin == at || dot == std::string_view::npos || domain.size() - dot - 1 < 2) continue;
    bool alpha_tld = std::all_of(domain.begin() + static_cast<std::ptrdiff_t>(dot) + 1, domain.end(),
                                 [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; });
    if (!alpha_tld) continue;
    out.add("mailto:" + std::string(text.substr(begin, end - begin)));
  }
}

std::vector<std::string> UriExtractor::variants(std::string_view original) {
  std::vector<std::string> result;
  std::string uri;
  for (char c : original)
    if (c != '\n' && c != '\r') uri += c;
  std::size_t begin = uri.find_first_not_of(" \t");
  if (begin == std::string::npos) return result;
  uri = uri.substr(begin, uri.find_last_not_of(" \t") - begin + 1);
  // Fragments, queries and relative paths name no host: nothing to match.
  if (uri.size() <= 1 || uri[0] == '#' || uri[0] == '?' || uri[0] == '&' || (uri[0] == '/' && uri.substr(0, 2) != "//")) {
    return result;
  }
  addOnce(result, uri);

  std::size_t colon = uri.find(':');
  if (startsWithNoCase(uri, "mailto:") || uri.substr(0, colon).find('@') != std::string::npos) {
    std::string address = startsWithNoCase(uri, "mailto:") ? uri.substr(7) : uri;
    std::size_t cut = address.find_first_of("?&");
    if (cut != std::string::npos && address.substr(0, cut).find('@') != std::string::npos) addOnce(result, address.substr(0, cut));
    return result;
  }

  std::string canonical = uri;
  std::replace(canonical.begin(), canonical.end(), '\\', '/');
  if (startsWithNoCase(canonical, "http:") || startsWithNoCase(canonical, "https:")) {
    std::size_t scheme_end = canonical.find(':') + 1;
    std::size_t slashes = 0;
    while (scheme_end + slashes < canonical.size() && slashes < 2 && canonical[scheme_end + slashes] == '/') ++slashes;
    canonical = canonical.substr(0, scheme_end) + "//" + canonical.substr(scheme_end + slashes);
  }
  canonical = decodeNumericReferences(decodeUnreserved(canonical));
  bool has_scheme = false;
  for (std::size_t i = 0; i < canonical.size(); ++i) {
    char c = canonical[i];
    if (c == ':') {
      has_scheme = i > 0;
      break;
    }
    if (!isAlnum(c) && c != '-' && c != '_') break;
  }
  if (!has_scheme) canonical = (startsWithNoCase(canonical, "ftp.") ? "ftp://" : "http://") + canonical;
  std::string lower_canonical = asciiLower(canonical);
  if (lower_canonical.starts_with("http://") || lower_canonical.starts_with("https://")) {
    std::size_t host_start = canonical.find("//") + 2;
    std::size_t host_end = canonical.find_first_of("/?#", host_start);
    if (host_end != std::string::npos && canonical[host_end] != '/') canonical.insert(host_end, "/");
    addOnce(result, canonical);
    host_end = canonical.find_first_of("/?#", host_start);
    if (host_end == std::string::npos) host_end = canonical.size();
    std::string scheme = canonical.substr(0, host_start);
    std::string host = canonical.substr(host_start, host_end - host_start);
    std::string rest = canonical.substr(host_end);
    if (std::size_t at = host.rfind('@'); at != std::string::npos) {
      host = host.substr(at + 1);
      addOnce(result, scheme + host + rest);
    }
    std::size_t port = host.find(':');
    std::string bare = host.substr(0, port);
    while (!bare.empty() && !isAlnum(bare.back())) bare.pop_back();
    if (bare.size() != host.substr(0, port).size()) addOnce(result, scheme + bare + (port == std::string::npos ? "" : host.substr(port)) + rest);
    // A URI inside another's path or query is where a redirector sends the reader.
    std::string lower_rest = asciiLower(rest);
    std::size_t embedded = lower_rest.find("http");
    while (embedded != std::string::npos) {
      std::string_view tail = std::string_view(rest).substr(embedded);
      std::size_t scheme_length = startsWithNoCase(tail, "https:") ? 6 : startsWithNoCase(tail, "http:") ? 5 : 0;
      if (scheme_length > 0) {
        std::string target(tail.substr(0, tail.find_first_of("&#")));
        if (target.find('.') != std::string::npos) {
          for (auto& variant : variants(target)) addOnce(result, std::move(variant));
        }
        break;
      }
      embedded = lower_rest.find("http", embedded + 4);
    }
  } else {
    addOnce(result, canonical);
  }
  return result;
}

}  // namespace mailgate::rules
