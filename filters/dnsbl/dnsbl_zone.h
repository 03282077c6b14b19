#pragma once
// One DNS list as an operator names it, in Postfix postscreen's syntax (postconf(5),
// postscreen_dnsbl_sites), which operators already know:
//   bl.example.net                      listed on any answer in 127.0.0.0/8, weight 1
//   bl.example.net*2                    weight 2
//   bl.example.net=127.0.0.[2..11]*3    only answers 127.0.0.2 to 127.0.0.11 count, weight 3
//   bl.example.net=127.0.0.[2;4;9..11]  a list of values and ranges in one octet
//   wl.example.net=127.0.[0..255].[2..255]*-5   a negative weight: an allow list
// The same syntax serves the client-address lists (`zones`), the domain lists for the sender and
// the HELO name (`rhs_zones`) and those for the domains in the message's links (`uri_zones`).

#include <array>
#include <bitset>
#include <expected>
#include <string>
#include <string_view>

namespace mailgate {

class DnsblZone {
 public:
  // Weights are small integers: a score is their sum, compared with the threshold.
  static constexpr int max_weight = 1000;

  // The whole entry must parse; the error says what is wrong with it.
  static std::expected<DnsblZone, std::string> parse(std::string_view entry);

  const std::string& name() const { return name_; }
  int weight() const { return weight_; }
  const std::string& entry() const { return entry_; }  // as written, for the record
  // Whether an A record's address (dotted quad) is one the filter lets count. Never true outside
  // 127.0.0.0/8 (RFC 5782 §2.1: list answers are loopback addresses; any other answer comes from a
  // misconfigured or expired list, which must not block the world).
  bool counts(std::string_view address) const;

 private:
  std::string name_;
  std::string entry_;
  int weight_ = 1;
  std::array<std::bitset<256>, 4> octets_;  // the values each octet of an answer may take
};

// True when `address` (dotted quad) lies in 127.0.0.0/8: a list's answer at all.
bool isListAnswer(std::string_view address);

}  // namespace mailgate
