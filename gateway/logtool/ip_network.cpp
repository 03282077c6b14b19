#include "gateway/logtool/ip_network.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace mailgate::logtool {
namespace {

constexpr std::size_t max_address_text = INET6_ADDRSTRLEN + 2;  // with [ ]
constexpr unsigned summary_prefix_v4 = 24;
constexpr unsigned summary_prefix_v6 = 48;
constexpr std::array<uint8_t, 12> v4_mapped_prefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

IpAddress masked(IpAddress address, unsigned prefix) {
  for (unsigned bit = prefix; bit < 128; ++bit) address.octets[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  return address;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() >= max_address_text) return std::nullopt;
  char buffer[max_address_text];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  IpAddress address;
  if (inet_pton(AF_INET, buffer, address.octets.data()) == 1) return address;
  if (inet_pton(AF_INET6, buffer, address.octets.data()) != 1) return std::nullopt;
  if (std::equal(v4_mapped_prefix.begin(), v4_mapped_prefix.end(), address.octets.begin())) {
    std::memmove(address.octets.data(), address.octets.data() + 12, 4);
    std::fill(address.octets.begin() + 4, address.octets.end(), 0);
    return address;
  }
  address.v6 = true;
  return address;
}

std::expected<IpNetwork, std::string> IpNetwork::parse(std::string_view text) {
  std::string_view address_text = text;
  std::optional<unsigned> prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    address_text = text.substr(0, slash);
    std::string_view digits = text.substr(slash + 1);
    unsigned value = 0;
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::unexpected("'" + std::string(text) + "': the prefix length after / must be a number");
    for (char c : digits) value = value * 10 + static_cast<unsigned>(c - '0');
    prefix = value;
  }
  auto address = IpAddress::parse(address_text);
  if (!address) return std::unexpected("'" + std::string(text) + "' is not an IP address or CIDR network");
  unsigned bits = address->v6 ? 128 : 32;
  if (prefix && *prefix > bits)
    return std::unexpected("'" + std::string(text) + "': prefix length over " + std::to_string(bits));
  IpNetwork network;
  network.prefix_ = prefix.value_or(bits);
  network.base_ = masked(*address, network.prefix_);
  return network;
}

bool IpNetwork::contains(const IpAddress& address) const {
  return address.v6 == base_.v6 && masked(address, prefix_).octets == base_.octets;
}

bool IpNetwork::contains(std::string_view address) const {
  auto parsed = IpAddress::parse(address);
  return parsed && contains(*parsed);
}

std::string summaryNetworkOf(std::string_view text) {
  auto address = IpAddress::parse(text);
  if (!address) return std::string(text);
  unsigned prefix = address->v6 ? summary_prefix_v6 : summary_prefix_v4;
  IpAddress network = masked(*address, prefix);
  char buffer[INET6_ADDRSTRLEN];
  inet_ntop(network.v6 ? AF_INET6 : AF_INET, network.octets.data(), buffer, sizeof buffer);
  return std::string(buffer) + "/" + std::to_string(prefix);
}

}  // namespace mailgate::logtool
