#pragma once
// The entries of the lists stage's block or allow files, one per line ('#' starts a comment):
//   192.0.2.0/24 or 192.0.2.7 or 2001:db8::/32   the client address
//   helo:host.example                            the HELO/EHLO name (exactly, any case)
//   from:spam.example                            the envelope sender's domain, subdomains too
//   from:user@x.example                          the envelope sender
//   to:user@example.org  /  to:example.org       a recipient, or a recipient domain
// Loaded once per configuration (SIGHUP reloads it) into hash sets, so that hundreds of thousands
// of entries load in well under a second and each lookup costs a few hashes: an address is
// looked up once per prefix length the list uses, a domain once per label.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "gateway/smtp/address.h"
#include "gateway/util/ip_address.h"

namespace mailgate {

class AccessList {
 public:
  // Reads every file; the errors name file:line (a bad line is an operator's mistake, refused at
  // --check-config, never skipped silently).
  static std::expected<AccessList, std::vector<std::string>> load(const std::vector<std::string>& paths);

  // Each returns the entry that matched, as written in a file's syntax ("192.0.2.0/24",
  // "from:spam.example"), for the record.
  std::optional<std::string> matchClient(const IpAddress& address) const;
  std::optional<std::string> matchHelo(std::string_view name) const;
  std::optional<std::string> matchSender(const Path& sender) const;
  std::optional<std::string> matchRecipient(const Path& recipient) const;

  std::size_t size() const { return entries_; }
  bool hasClients() const { return !v4_lengths_.empty() || !v6_lengths_.empty(); }
  bool hasHelos() const { return !helos_.empty(); }
  bool hasSenders() const { return !sender_domains_.empty() || !sender_addresses_.empty(); }
  bool hasRecipients() const { return !recipient_domains_.empty() || !recipient_addresses_.empty(); }

  // One line's meaning, for load() and its tests; the error says what is wrong.
  std::expected<void, std::string> add(std::string_view entry);

 private:
  struct Key {  // a network: its masked bytes and length
    IpAddress network;
    unsigned bits;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& key) const noexcept;
  };

  std::optional<std::string> matchDomain(const std::unordered_set<std::string>& domains, std::string_view domain,
                                         std::string_view prefix) const;

  std::unordered_set<Key, KeyHash> networks_;
  std::vector<unsigned> v4_lengths_;  // prefix lengths in use, longest first
  std::vector<unsigned> v6_lengths_;
  std::unordered_set<std::string> helos_;
  std::unordered_set<std::string> sender_domains_;
  std::unordered_set<std::string> sender_addresses_;
  std::unordered_set<std::string> recipient_domains_;
  std::unordered_set<std::string> recipient_addresses_;
  std::size_t entries_ = 0;
};

}  // namespace mailgate
