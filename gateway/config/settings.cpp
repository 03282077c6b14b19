// Settings: typed, checked access to one TOML table, with unknown-key detection (config.h).

// The only file that includes toml++ (a heavy header), used header-only (see CMakeLists.txt).
#include <toml++/toml.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "gateway/config/config.h"

namespace mailgate {
namespace {

template <class T>
using Converted = std::expected<T, std::string>;

unsigned lineOf(const toml::node& node) { return node.source().begin.line; }

std::string typeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string expected(std::string_view what, const toml::node& node) {
  return "expected " + std::string(what) + ", found " + typeName(node);
}

Converted<std::string> toString(const toml::node& node) {
  if (const auto* value = node.as_string()) return value->get();
  return std::unexpected(expected("a string", node));
}

Converted<bool> toBoolean(const toml::node& node) {
  if (const auto* value = node.as_boolean()) return value->get();
  return std::unexpected(expected("a boolean (true or false)", node));
}

Converted<double> toNumber(const toml::node& node) {
  if (const auto* value = node.as_integer()) return static_cast<double>(value->get());
  const auto* value = node.as_floating_point();
  if (value == nullptr) return std::unexpected(expected("a number", node));
  if (!std::isfinite(value->get())) return std::unexpected("must be a finite number");
  return value->get();
}

Converted<uint64_t> toSize(const toml::node& node) {
  if (const auto* value = node.as_integer()) {
    if (value->get() < 0) return std::unexpected("must not be negative");
    return static_cast<uint64_t>(value->get());
  }
  if (const auto* value = node.as_string()) return parseSize(value->get());
  return std::unexpected(expected("a size (bytes, or a string like \"25MiB\")", node));
}

Converted<Duration> toDuration(const toml::node& node) {
  if (const auto* value = node.as_integer()) {
    if (value->get() < 0) return std::unexpected("must not be negative");
    if (value->get() > std::numeric_limits<Duration::rep>::max() / 1000) return std::unexpected("too large");
    return std::chrono::seconds(value->get());
  }
  if (const auto* value = node.as_string()) return parseDuration(value->get());
  return std::unexpected(expected("a duration (seconds, or a string like \"30s\")", node));
}

auto toHostPort(uint16_t default_port) {
  return [default_port](const toml::node& node) -> Converted<HostPort> {
    if (const auto* value = node.as_string()) return parseHostPort(value->get(), default_port);
    return std::unexpected(expected("an address (a string like \"host:port\")", node));
  };
}

// An error is one line of printable text, as a terminal or a log shows it: toml++ quotes the text
// it could not parse as it is, and keys and values may hold line ends and control characters.
std::string oneLine(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : "\\x%02x", c);
      out += escaped;
    }
  }
  return out;
}

}  // namespace

struct Settings::Impl {
  std::shared_ptr<const toml::table> document;  // owns `table`; shared by every Settings cut from it
  const toml::table* table = nullptr;
  std::string file;
  std::string path;
  unsigned line = 0;  // of the table itself: where a missing key is reported
  std::set<std::string, std::less<>> known;
  std::vector<ConfigError> errors;

  std::string dotted(std::string_view key) const {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }

  // Keys and values may hold any character a TOML string can (quoted keys, "\n" escapes).
  void error(unsigned at, std::string_view key, std::string_view message) {
    errors.push_back(ConfigError{file, at, oneLine(dotted(key)), oneLine(message)});
  }

  const toml::node* find(std::string_view key) {
    known.emplace(key);
    return table->get(key);
  }

  std::unique_ptr<Impl> child(const toml::table& sub_table, std::string_view key) const {
    auto impl = std::make_unique<Impl>();
    impl->document = document;
    impl->table = &sub_table;
    impl->file = file;
    impl->path = dotted(key);
    impl->line = lineOf(sub_table);
    return impl;
  }

  template <class T, class Convert>
  std::optional<T> read(std::string_view key, Convert convert) {
    const toml::node* node = find(key);
    if (node == nullptr) return std::nullopt;
    Converted<T> value = convert(*node);
    if (!value) {
      error(lineOf(*node), key, std::move(value.error()));
      return std::nullopt;
    }
    return std::move(*value);
  }

  // Every bad entry is reported (at its own line, as "key[N]"), not just the first.
  template <class T, class Convert>
  std::optional<std::vector<T>> readArray(std::string_view key, std::string_view what, Convert convert) {
    const toml::node* node = find(key);
    if (node == nullptr) return std::nullopt;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      error(lineOf(*node), key, expected(what, *node));
      return std::nullopt;
    }
    std::vector<T> values;
    bool all_good = true;
    for (size_t i = 0; i < array->size(); ++i) {
      Converted<T> value = convert((*array)[i]);
      if (value) {
        values.push_back(std::move(*value));
      } else {
        error(lineOf((*array)[i]), entryKey(key, i), std::move(value.error()));
        all_good = false;
      }
    }
    if (!all_good) return std::nullopt;
    return values;
  }

  static std::string entryKey(std::string_view key, size_t index) {
    return std::string(key) + "[" + std::to_string(index) + "]";
  }
};

Settings::Settings(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Settings::~Settings() = default;
Settings::Settings(Settings&&) noexcept = default;
Settings& Settings::operator=(Settings&&) noexcept = default;

std::optional<std::string> Settings::string(std::string_view key) {
  return impl_->read<std::string>(key, toString);
}

std::optional<bool> Settings::boolean(std::string_view key) { return impl_->read<bool>(key, toBoolean); }

std::optional<int64_t> Settings::integer(std::string_view key, int64_t min, int64_t max) {
  return impl_->read<int64_t>(key, [min, max](const toml::node& node) -> Converted<int64_t> {
    const auto* value = node.as_integer();
    if (value == nullptr) return std::unexpected(expected("an integer", node));
    if (value->get() < min) return std::unexpected("must be at least " + std::to_string(min));
    if (value->get() > max) return std::unexpected("must be at most " + std::to_string(max));
    return value->get();
  });
}

std::optional<double> Settings::number(std::string_view key) { return impl_->read<double>(key, toNumber); }

std::optional<uint64_t> Settings::size(std::string_view key) { return impl_->read<uint64_t>(key, toSize); }

std::optional<Duration> Settings::duration(std::string_view key) {
  return impl_->read<Duration>(key, toDuration);
}

std::optional<std::vector<std::string>> Settings::strings(std::string_view key) {
  return impl_->readArray<std::string>(key, "an array of strings", toString);
}

std::optional<HostPort> Settings::hostPort(std::string_view key, uint16_t default_port) {
  return impl_->read<HostPort>(key, toHostPort(default_port));
}

std::optional<std::vector<HostPort>> Settings::hostPorts(std::string_view key, uint16_t default_port) {
  return impl_->readArray<HostPort>(key, "an array of addresses (strings like \"host:port\")",
                                    toHostPort(default_port));
}

void Settings::fail(std::string_view key, std::string message) {
  const toml::node* node = impl_->find(key);
  impl_->error(node != nullptr ? lineOf(*node) : impl_->line, key, std::move(message));
}

void Settings::failEntry(std::string_view key, size_t index, std::string message) {
  const toml::node* node = impl_->find(key);
  const toml::array* array = node != nullptr ? node->as_array() : nullptr;
  unsigned at = impl_->line;
  if (array != nullptr && index < array->size()) {
    at = lineOf((*array)[index]);
  } else if (node != nullptr) {
    at = lineOf(*node);
  }
  impl_->error(at, Impl::entryKey(key, index), std::move(message));
}

std::vector<ConfigError> Settings::finish() {
  for (const auto& [key, node] : *impl_->table) {
    if (impl_->known.contains(key.str())) continue;
    // Known from now on, so that calling finish() again does not report it twice.
    impl_->known.emplace(key.str());
    bool is_table = node.is_table() || node.is_array_of_tables();
    impl_->error(lineOf(node), key.str(), is_table ? "unknown table" : "unknown key");
  }
  return impl_->errors;
}

bool Settings::ok() const { return impl_->errors.empty(); }

std::string Settings::path() const { return impl_->path; }

const std::vector<ConfigError>& Settings::errors() const { return impl_->errors; }

std::expected<Settings, ConfigError> Settings::parse(std::string_view toml_text, const std::string& source) {
  toml::parse_result result = toml::parse(toml_text, std::string_view(source));
  if (!result) {
    const toml::parse_error& error = result.error();
    return std::unexpected(ConfigError{source, error.source().begin.line, "", oneLine(error.description())});
  }
  auto impl = std::make_unique<Impl>();
  impl->document = std::make_shared<const toml::table>(std::move(result).table());
  impl->table = impl->document.get();
  impl->file = source;
  impl->line = 1;
  return Settings(std::move(impl));
}

std::optional<Settings> Settings::table(std::string_view key) {
  const toml::node* node = impl_->find(key);
  if (node == nullptr) return std::nullopt;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    impl_->error(lineOf(*node), key, expected("a table ([" + std::string(key) + "])", *node));
    return std::nullopt;
  }
  return Settings(impl_->child(*table, key));
}

std::vector<Settings> Settings::tables(std::string_view key) {
  std::vector<Settings> result;
  const toml::node* node = impl_->find(key);
  if (node == nullptr) return result;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    impl_->error(lineOf(*node), key, expected("an array of tables ([[" + std::string(key) + "]])", *node));
    return result;
  }
  for (size_t i = 0; i < array->size(); ++i) {
    std::string entry = Impl::entryKey(key, i);
    const toml::table* table = (*array)[i].as_table();
    if (table == nullptr) {
      impl_->error(lineOf((*array)[i]), entry, expected("a table", (*array)[i]));
      continue;
    }
    result.push_back(Settings(impl_->child(*table, entry)));
  }
  return result;
}

}  // namespace mailgate
