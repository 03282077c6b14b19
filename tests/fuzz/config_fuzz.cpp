// libFuzzer target for the TOML configuration loader (tests/fuzz/README.md). The input is a
// config file's text. It goes through parseConfig(), and, when every [[stage]] is a size_limit or
// of an unknown type, through buildPipeline() too (the other stages start a resolver or read rule
// files, which is neither quick nor the loader's business). Findings, besides crashes and
// sanitizer reports:
//  - an error without the file's name, a line in the file (1 up to the number of lines), or a key
//    (a TOML syntax error alone has no key: toml++ itself refuses that text); an error whose
//    message is empty, or whose text() is not one line of printable text "file:line: key: message";
//  - a loaded configuration that breaks what the loader promises (a listen address, a valid
//    hostname, at least one domain and recipient, proxy_sources when proxy_protocol is on, a type
//    for every stage).

#include <toml++/toml.h>

#include <algorithm>
#include <string>

#include "filters/builtin_stages.h"
#include "gateway/config/config.h"
#include "gateway/smtp/address.h"
#include "tests/fuzz/fuzz_support.h"

namespace mailgate {
namespace {

using fuzz::require;

constexpr const char* source = "fuzz.toml";

// Lines as toml++ counts them: LF ends a line.
unsigned lineCount(std::string_view text) {
  return static_cast<unsigned>(std::count(text.begin(), text.end(), '\n')) + 1;
}

void checkErrors(const std::vector<ConfigError>& errors, std::string_view text, bool syntax_error) {
  require(!errors.empty(), "refused without an error");
  if (syntax_error) require(errors.size() == 1, "a TOML syntax error reported with others");
  for (const ConfigError& error : errors) {
    std::string shown = error.text();
    require(error.file == source, "an error without the file's name", shown);
    require(error.line >= 1 && error.line <= lineCount(text), "an error without its line", shown);
    require(syntax_error || !error.key.empty(), "an error without its key", shown);
    require(!error.message.empty(), "an error without a message", shown);
    for (unsigned char c : shown) require(c >= 0x20 && c != 0x7f, "an error that is not one line of printable text", shown);
    std::string expected = std::string(source) + ":" + std::to_string(error.line) + ": " +
                           (error.key.empty() ? "" : error.key + ": ") + error.message;
    require(shown == expected, "error text not file:line: key: message", shown);
  }
}

void checkConfig(const Config& config) {
  require(config.source == source, "config without its source");
  require(!config.server.listen.empty(), "no listen address");
  require(isValidDomain(config.server.hostname), "hostname not a domain", config.server.hostname);
  require(!config.server.domains.empty(), "no domain served");
  require(config.server.max_recipients >= 1, "max_recipients 0");
  require(!config.server.proxy_protocol || !config.server.proxy_sources.empty(), "PROXY with no trusted source");
  for (const StageSpec& stage : config.stages) {
    require(!stage.type.empty(), "a stage without a type");
    require(stage.settings != nullptr, "a stage without its settings");
  }
}

bool cheapStages(const Config& config) {
  auto types = builtinStageTypes();
  return std::all_of(config.stages.begin(), config.stages.end(), [&](const StageSpec& stage) {
    return stage.type == "size_limit" || std::find(types.begin(), types.end(), stage.type) == types.end();
  });
}

}  // namespace
}  // namespace mailgate

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailgate;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  bool syntax_error = !toml::parse(text, std::string_view(source));
  auto config = parseConfig(text, source);
  if (!config) {
    checkErrors(config.error(), text, syntax_error);
    return 0;
  }
  require(!syntax_error, "text toml++ refuses was loaded");
  checkConfig(*config);
  if (!cheapStages(*config)) return 0;
  auto pipeline = buildPipeline(*config);
  if (!pipeline) checkErrors(pipeline.error(), text, false);
  return 0;
}
