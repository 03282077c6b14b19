#include "filters/dnsbl/dnsbl_zone.h"

#include <charconv>
#include <optional>

#include "filters/header_text.h"
#include "gateway/util/ip_address.h"

namespace mailgate {
namespace {

std::optional<int> number(std::string_view text, int min, int max) {
  int value = 0;
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) return std::nullopt;
  return value;
}

// One octet of a filter: "2", or "[2..11]", or "[2;4;9..11]" (postconf(5)).
std::expected<std::bitset<256>, std::string> octetPattern(std::string_view text) {
  std::bitset<256> allowed;
  if (text.empty() || text.front() != '[') {
    auto value = number(text, 0, 255);
    if (!value) return std::unexpected("\"" + std::string(text) + "\" is not an octet (0 to 255) or a [..] pattern");
    allowed.set(static_cast<std::size_t>(*value));
    return allowed;
  }
  if (text.back() != ']' || text.size() < 3)
    return std::unexpected("\"" + std::string(text) + "\" is not a pattern such as [2..11] or [2;4]");
  std::string_view inner = text.substr(1, text.size() - 2);
  while (true) {
    std::size_t semicolon = inner.find(';');
    std::string_view item = inner.substr(0, semicolon);
    std::size_t dots = item.find("..");
    auto low = number(item.substr(0, dots), 0, 255);
    auto high = dots == std::string_view::npos ? low : number(item.substr(dots + 2), 0, 255);
    if (!low || !high || *low > *high)
      return std::unexpected("\"" + std::string(item) + "\" in \"" + std::string(text) +
                             "\" is not an octet or a range low..high of octets");
    for (int value = *low; value <= *high; ++value) allowed.set(static_cast<std::size_t>(value));
    if (semicolon == std::string_view::npos) break;
    inner = inner.substr(semicolon + 1);
  }
  return allowed;
}

}  // namespace

std::expected<DnsblZone, std::string> DnsblZone::parse(std::string_view entry) {
  DnsblZone zone;
  zone.entry_ = std::string(entry);
  auto fail = [&](std::string why) { return std::unexpected("zone \"" + std::string(entry) + "\": " + why); };
  std::string_view rest = entry;
  // The weight is last: "*-5" after the name or the filter.
  if (std::size_t star = rest.rfind('*'); star != std::string_view::npos) {
    std::string_view weight = rest.substr(star + 1);
    bool negative = !weight.empty() && weight.front() == '-';
    auto value = number(negative ? weight.substr(1) : weight, 0, max_weight);
    if (!value || (negative && *value == 0))
      return fail("the weight after '*' must be a whole number from -" + std::to_string(max_weight) + " to " +
                  std::to_string(max_weight));
    zone.weight_ = negative ? -*value : *value;
    rest = rest.substr(0, star);
  }
  std::string_view filter;
  if (std::size_t equals = rest.find('='); equals != std::string_view::npos) {
    filter = rest.substr(equals + 1);
    rest = rest.substr(0, equals);
    if (filter.empty()) return fail("nothing after '='; write a filter such as 127.0.0.[2..11]");
  }
  std::string name(rest);
  for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (!isDomainName(name)) return fail("\"" + std::string(rest) + "\" is not a domain name");
  zone.name_ = std::move(name);
  if (filter.empty()) {
    zone.octets_[0].set(127);  // any answer in 127.0.0.0/8
    for (std::size_t i = 1; i < 4; ++i) zone.octets_[i].set();
    return zone;
  }
  std::size_t at = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    std::size_t dot = i < 3 ? filter.find('.', at) : std::string_view::npos;
    // A dot inside a pattern ("[2..11]") is part of it.
    std::size_t open = filter.find('[', at);
    if (dot != std::string_view::npos && open != std::string_view::npos && open < dot) {
      std::size_t close = filter.find(']', open);
      if (close == std::string_view::npos) return fail("an unclosed '[' in the filter");
      dot = filter.find('.', close);
    }
    if (i < 3 && dot == std::string_view::npos) return fail("the filter must have four octets, e.g. 127.0.0.[2..11]");
    std::string_view octet = filter.substr(at, dot == std::string_view::npos ? std::string_view::npos : dot - at);
    auto pattern = octetPattern(octet);
    if (!pattern) return fail(pattern.error());
    zone.octets_[i] = *pattern;
    at = dot + 1;
  }
  if (!zone.octets_[0].test(127)) return fail("the filter must lie in 127.0.0.0/8 (RFC 5782 §2.1: list answers are loopback addresses)");
  zone.octets_[0].reset();
  zone.octets_[0].set(127);
  return zone;
}

bool DnsblZone::counts(std::string_view address) const {
  auto parsed = IpAddress::parse(address);
  if (!parsed || !parsed->v4 || parsed->bytes[0] != 127) return false;
  for (std::size_t i = 0; i < 4; ++i)
    if (!octets_[i].test(parsed->bytes[i])) return false;
  return true;
}

bool isListAnswer(std::string_view address) {
  auto parsed = IpAddress::parse(address);
  return parsed && parsed->v4 && parsed->bytes[0] == 127;
}

}  // namespace mailgate
