#include "filters/lists/access_list.h"

#include <algorithm>
#include <fstream>

#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

// A domain as lists compare it: lower case, without a trailing dot.
std::string domainKey(std::string_view domain) {
  std::string key = asciiLower(domain);
  if (key.ends_with('.')) key.pop_back();
  return key;
}

bool plausibleDomain(std::string_view domain) {
  if (domain.empty() || domain.size() > max_domain_octets) return false;
  return std::all_of(domain.begin(), domain.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
  });
}

void insertLength(std::vector<unsigned>& lengths, unsigned bits) {
  if (std::find(lengths.begin(), lengths.end(), bits) != lengths.end()) return;
  lengths.push_back(bits);
  std::sort(lengths.begin(), lengths.end(), std::greater<>());
}

}  // namespace

std::size_t AccessList::KeyHash::operator()(const Key& key) const noexcept {
  // FNV-1a over the network's bytes and its length.
  std::size_t hash = 1469598103934665603ULL;
  for (std::size_t i = 0; i < key.network.octets(); ++i) hash = (hash ^ key.network.bytes[i]) * 1099511628211ULL;
  return (hash ^ key.bits ^ (key.network.v4 ? 0x100 : 0)) * 1099511628211ULL;
}

std::expected<void, std::string> AccessList::add(std::string_view entry) {
  auto colon = entry.find(':');
  std::string_view kind = colon == std::string_view::npos ? std::string_view() : entry.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? entry : entry.substr(colon + 1);
  if (kind == "helo") {
    std::string name = domainKey(value);
    if (name.empty()) return std::unexpected("helo: needs a name");
    helos_.insert(std::move(name));
  } else if (kind == "from" || kind == "to") {
    bool sender = kind == "from";
    std::string text = asciiLower(value);
    if (text.empty()) return std::unexpected(std::string(kind) + ": needs a domain or an address");
    auto at = text.rfind('@');
    if (at == std::string::npos || at == 0) {
      std::string domain = domainKey(at == 0 ? std::string_view(text).substr(1) : std::string_view(text));
      if (!plausibleDomain(domain)) return std::unexpected("not a domain: " + std::string(value));
      (sender ? sender_domains_ : recipient_domains_).insert(std::move(domain));
    } else {
      if (!plausibleDomain(domainKey(std::string_view(text).substr(at + 1))))
        return std::unexpected("not an address: " + std::string(value));
      text = text.substr(0, at + 1) + domainKey(std::string_view(text).substr(at + 1));
      (sender ? sender_addresses_ : recipient_addresses_).insert(std::move(text));
    }
  } else {
    // A client address or network. Anything else with a colon that is not IPv6 is a typo.
    auto cidr = Cidr::parse(entry);
    if (!cidr) {
      if (!kind.empty() && entry.find('/') == std::string_view::npos && !IpAddress::parse(entry))
        return std::unexpected("unknown kind \"" + std::string(kind) + ":\" (known: helo:, from:, to:, or an address)");
      return std::unexpected("not an address or network (host bits set after the prefix length?): " + std::string(entry));
    }
    networks_.insert(Key{cidr->network, cidr->bits});
    insertLength(cidr->network.v4 ? v4_lengths_ : v6_lengths_, cidr->bits);
  }
  ++entries_;
  return {};
}

std::expected<AccessList, std::vector<std::string>> AccessList::load(const std::vector<std::string>& paths) {
  AccessList list;
  std::vector<std::string> errors;
  for (const std::string& path : paths) {
    std::ifstream file(path);
    if (!file) {
      errors.push_back(path + ": cannot be read");
      continue;
    }
    std::string line;
    unsigned number = 0;
    while (std::getline(file, line)) {
      ++number;
      std::string_view entry = line;
      if (auto hash = entry.find('#'); hash != std::string_view::npos) entry = entry.substr(0, hash);
      std::string text = trimmed(entry);
      if (text.empty()) continue;
      if (auto added = list.add(text); !added) {
        // A list with thousands of typos says so once per file, not thousands of times.
        if (errors.size() < 20) errors.push_back(path + ":" + std::to_string(number) + ": " + added.error());
      }
    }
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return list;
}

std::optional<std::string> AccessList::matchClient(const IpAddress& address) const {
  for (unsigned bits : address.v4 ? v4_lengths_ : v6_lengths_) {
    Key key{masked(address, bits), bits};
    if (networks_.contains(key))
      return bits == address.octets() * 8 ? key.network.text() : key.network.text() + "/" + std::to_string(bits);
  }
  return std::nullopt;
}

std::optional<std::string> AccessList::matchHelo(std::string_view name) const {
  std::string key = domainKey(name);
  if (helos_.contains(key)) return "helo:" + key;
  return std::nullopt;
}

std::optional<std::string> AccessList::matchDomain(const std::unordered_set<std::string>& domains,
                                                   std::string_view domain, std::string_view prefix) const {
  // The domain and each parent: "a.b.example" matches entries a.b.example, b.example, example.
  std::string key = domainKey(domain);
  std::string_view rest = key;
  while (!rest.empty()) {
    if (domains.contains(std::string(rest))) return std::string(prefix) + std::string(rest);
    auto dot = rest.find('.');
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return std::nullopt;
}

std::optional<std::string> AccessList::matchSender(const Path& sender) const {
  if (sender.address().empty()) return std::nullopt;
  std::string address = asciiLower(sender.mailbox.local_part) + "@" + domainKey(sender.mailbox.domain);
  if (sender_addresses_.contains(address)) return "from:" + address;
  return matchDomain(sender_domains_, sender.mailbox.domain, "from:");
}

std::optional<std::string> AccessList::matchRecipient(const Path& recipient) const {
  std::string address = asciiLower(recipient.mailbox.local_part) + "@" + domainKey(recipient.mailbox.domain);
  if (recipient_addresses_.contains(address)) return "to:" + address;
  if (recipient.mailbox.domain.empty()) return std::nullopt;
  return matchDomain(recipient_domains_, recipient.mailbox.domain, "to:");
}

}  // namespace mailgate
