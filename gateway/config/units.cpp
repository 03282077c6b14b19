// Value parsers for sizes, durations and host:port, shared by the config loader and the command
// line, and the syntax checks the loader applies to names and addresses.

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>

#include "gateway/config/config.h"
#include "gateway/config/settings_impl.h"
#include "gateway/util/ascii.h"

namespace mailgate {
namespace config_detail {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// inet_pton reads a C string: a NUL inside the text (TOML allows "\u0000") would hide the rest.
bool isIpv4(std::string_view host) {
  in_addr address{};
  return !host.contains('\0') && inet_pton(AF_INET, std::string(host).c_str(), &address) == 1;
}

bool isIpv6(std::string_view host) {
  in6_addr address{};
  return !host.contains('\0') && inet_pton(AF_INET6, std::string(host).c_str(), &address) == 1;
}

bool isLabel(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::ranges::all_of(label, [](char c) {
    return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
  });
}

}  // namespace

bool isDomainName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (size_t start = 0;;) {
    size_t dot = name.find('.', start);
    if (!isLabel(name.substr(start, dot == std::string_view::npos ? dot : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool isIpLiteral(std::string_view host) { return isIpv4(host) || isIpv6(host); }

bool isCidr(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view address = text.substr(0, slash);
  std::string_view prefix = text.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 3 || !std::ranges::all_of(prefix, isDigit)) return false;
  unsigned bits = 0;
  std::from_chars(prefix.data(), prefix.data() + prefix.size(), bits);
  if (isIpv4(address)) return bits <= 32;
  if (isIpv6(address)) return bits <= 128;
  return false;
}


std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

}  // namespace config_detail

namespace {

using config_detail::isDigit;
using config_detail::quoted;

struct Unit {
  std::string_view name;  // lower case: units are matched case-insensitively
  uint64_t factor;
};

constexpr Unit size_units[] = {
    {"", 1},          {"b", 1},         {"kb", 1000},     {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
    {"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
};

// Factors in milliseconds; a bare number is seconds.
constexpr Unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {"d", 24 * 60 * 60 * 1000},
};

// "<digits>[ ]<unit>" → value × factor, with every way to get it wrong named in the message.
std::expected<uint64_t, std::string> parseWithUnit(std::string_view text, std::span<const Unit> units,
                                                   uint64_t max, std::string_view what,
                                                   std::string_view unit_names) {
  auto invalid = [&](std::string_view why) {
    return std::unexpected("invalid " + std::string(what) + " " + quoted(text) + ": " + std::string(why));
  };
  if (!text.empty() && text.front() == '-') return invalid("must not be negative");
  size_t digits = 0;
  while (digits < text.size() && isDigit(text[digits])) ++digits;
  if (digits == 0)
    return invalid("expected a whole number with an optional unit (" + std::string(unit_names) + ")");
  uint64_t number = 0;
  if (std::from_chars(text.data(), text.data() + digits, number).ec == std::errc::result_out_of_range)
    return invalid("too large");
  std::string_view rest = text.substr(digits);
  if (!rest.empty() && rest.front() == '.') return invalid("must be a whole number");
  // One space between number and unit reads naturally ("25 MiB"); a space before nothing does not.
  if (!rest.empty() && rest.front() == ' ') {
    rest.remove_prefix(1);
    if (rest.empty()) return invalid("missing unit after the space");
  }
  std::string unit = asciiLower(rest);
  auto found = std::ranges::find(units, std::string_view(unit), &Unit::name);
  if (found == units.end())
    return invalid("unknown unit " + quoted(rest) + " (use " + std::string(unit_names) + ")");
  if (number > max / found->factor) return invalid("too large");
  return number * found->factor;
}

std::expected<uint16_t, std::string> parsePort(std::string_view port, std::string_view text) {
  unsigned value = 0;
  bool digits = !port.empty() && port.size() <= 5 && std::ranges::all_of(port, isDigit);
  if (digits) std::from_chars(port.data(), port.data() + port.size(), value);
  if (!digits || value < 1 || value > 65535)
    return std::unexpected("invalid address " + quoted(text) + ": port must be a number from 1 to 65535");
  return static_cast<uint16_t>(value);
}

}  // namespace

std::expected<uint64_t, std::string> parseSize(std::string_view text) {
  return parseWithUnit(text, size_units, std::numeric_limits<uint64_t>::max(), "size",
                       "B, KB, MB, GB, KiB, MiB, GiB");
}

std::expected<Duration, std::string> parseDuration(std::string_view text) {
  auto milliseconds = parseWithUnit(text, duration_units, std::numeric_limits<Duration::rep>::max(),
                                    "duration", "ms, s, m, h, d");
  if (!milliseconds) return std::unexpected(std::move(milliseconds.error()));
  return Duration(static_cast<Duration::rep>(*milliseconds));
}

std::expected<HostPort, std::string> parseHostPort(std::string_view text, uint16_t default_port) {
  auto invalid = [&](std::string_view why) {
    return std::unexpected("invalid address " + quoted(text) + ": " + std::string(why));
  };
  HostPort result;
  std::optional<std::string_view> port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return invalid("missing ']'");
    result.host = text.substr(1, close - 1);
    if (!config_detail::isIpLiteral(result.host) || result.host.find(':') == std::string::npos)
      return invalid("brackets must enclose an IPv6 address");
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return invalid("expected ':' and a port after ']'");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    size_t colons = std::ranges::count(text, ':');
    if (colons > 1) {
      // Without brackets "::1:25" could be an address or an address and a port: only a bare
      // IPv6 address is read this way, so a port needs the brackets.
      if (!config_detail::isIpLiteral(text))
        return invalid("an IPv6 address with a port must be in brackets, e.g. \"[::1]:25\"");
      result.host = text;
    } else {
      size_t colon = text.find(':');
      result.host = text.substr(0, colon);
      if (colon != std::string_view::npos) port = text.substr(colon + 1);
      if (result.host.empty()) return invalid("missing host");
      bool looks_numeric = std::ranges::all_of(result.host, [](char c) { return isDigit(c) || c == '.'; });
      if (looks_numeric && !config_detail::isIpLiteral(result.host))
        return invalid("not a valid IPv4 address");
      if (!looks_numeric && !config_detail::isDomainName(result.host))
        return invalid("not a valid host name");
    }
  }
  if (port) {
    auto number = parsePort(*port, text);
    if (!number) return std::unexpected(std::move(number.error()));
    result.port = *number;
  } else if (default_port == 0) {
    return invalid("missing port");
  } else {
    result.port = default_port;
  }
  return result;
}

}  // namespace mailgate
