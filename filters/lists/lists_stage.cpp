#include "filters/lists/lists_stage.h"

#include <filesystem>

#include "gateway/pipeline/allowance.h"

namespace mailgate {
namespace {

// "550 5.7.1 Access denied": a code, an enhanced code, a text.
std::expected<Reply, std::string> parseReply(std::string_view text) {
  auto space = text.find(' ');
  if (space != 3) return std::unexpected("must read \"CODE X.Y.Z text\", e.g. \"550 5.7.1 Access denied\"");
  int code = std::atoi(std::string(text.substr(0, 3)).c_str());
  std::string_view rest = text.substr(4);
  auto second = rest.find(' ');
  std::string_view enhanced = rest.substr(0, second);
  std::string_view words = second == std::string_view::npos ? std::string_view() : rest.substr(second + 1);
  if (code < 400 || code > 599) return std::unexpected("a block reply is a 4xx (try later) or a 5xx (refused)");
  return Reply::make(code, enhanced, words.empty() ? "Access denied" : words);
}

std::vector<std::string> relativeTo(const std::string& config_source, std::vector<std::string> paths) {
  std::filesystem::path base = std::filesystem::path(config_source).parent_path();
  for (std::string& path : paths)
    if (std::filesystem::path(path).is_relative() && !base.empty()) path = (base / path).string();
  return paths;
}

PhaseMask phasesFor(const AccessList& list) {
  PhaseMask phases = 0;
  if (list.hasClients()) phases |= phaseBit(Phase::Connect);
  if (list.hasHelos()) phases |= phaseBit(Phase::Helo);
  if (list.hasSenders()) phases |= phaseBit(Phase::MailFrom);
  if (list.hasRecipients()) phases |= phaseBit(Phase::Rcpt);
  return phases;
}

}  // namespace

std::unique_ptr<Stage> ListsStage::fromSettings(Settings& settings, StageContext& context) {
  Policy policy;
  auto block_paths = settings.strings("block").value_or(std::vector<std::string>{});
  auto allow_paths = settings.strings("allow").value_or(std::vector<std::string>{});
  if (block_paths.empty() && allow_paths.empty() && settings.ok())
    settings.fail("block", "the lists stage needs `block` or `allow` files");
  if (auto text = settings.string("block_reply")) {
    if (auto reply = parseReply(*text)) policy.block_reply = *reply;
    else settings.fail("block_reply", reply.error());
  }
  if (auto decide = settings.string("decide")) {
    if (*decide == "rcpt") policy.decide_at_rcpt = true;
    else if (*decide != "earliest") settings.fail("decide", "must be \"earliest\" (default) or \"rcpt\"");
  }
  if (auto skips = settings.strings("allow_skips")) policy.allow_skips = *skips;
  const std::string& source = context.config().source;
  auto block = AccessList::load(relativeTo(source, block_paths));
  auto allow = AccessList::load(relativeTo(source, allow_paths));
  for (const auto* loaded : {&block, &allow}) {
    if (*loaded) continue;
    std::string key = loaded == &block ? "block" : "allow";
    for (const auto& error : loaded->error()) settings.fail(key, error);
  }
  if (!block || !allow || !settings.ok()) return nullptr;
  return std::make_unique<ListsStage>(std::move(*block), std::move(*allow), std::move(policy));
}

ListsStage::ListsStage(AccessList block, AccessList allow, Policy policy)
    : block_(std::move(block)), allow_(std::move(allow)), policy_(std::move(policy)) {
  phases_ = phasesFor(block_) | phasesFor(allow_);
}

std::optional<std::string> ListsStage::match(const AccessList& list, const StageInput& input) const {
  switch (input.phase) {
    case Phase::Connect: {
      auto address = IpAddress::parse(input.client_ip);
      return address ? list.matchClient(*address) : std::nullopt;
    }
    case Phase::Helo: return list.matchHelo(input.helo);
    case Phase::MailFrom: return input.sender ? list.matchSender(*input.sender) : std::nullopt;
    case Phase::Rcpt: return input.recipient ? list.matchRecipient(*input.recipient) : std::nullopt;
    case Phase::EndOfData: return std::nullopt;
  }
  return std::nullopt;
}

Step ListsStage::check(const StageInput& input) const {
  if (auto allowed = match(allow_, input)) {
    // The client and its HELO are the session's; the sender and recipients, the transaction's.
    bool session_wide = input.phase == Phase::Connect || input.phase == Phase::Helo;
    auto& scratch = session_wide ? input.session_scratch : input.scratch;
    if (scratch) {
      auto allowance = scratch->shared<Allowance>();
      allowance->granted = true;
      allowance->by = "lists: " + *allowed;
      allowance->stages = policy_.allow_skips;
    }
    Verdict verdict = Verdict::proceed("allowed: " + *allowed);
    verdict.details.push_back({"allowed", *allowed});
    return verdict;
  }
  if (auto blocked = match(block_, input)) {
    Verdict verdict = policy_.block_reply.transient() ? Verdict::tempFail(policy_.block_reply, "blocked: " + *blocked)
                                                      : Verdict::reject(policy_.block_reply, "blocked: " + *blocked);
    verdict.details.push_back({"blocked", *blocked});
    if (policy_.decide_at_rcpt && input.phase < Phase::Rcpt) verdict.answer_at = Phase::Rcpt;
    return verdict;
  }
  return Verdict::proceed();
}

}  // namespace mailgate
