#include "filters/clamav/clamav_stage.h"

#include <optional>

#include "filters/clamav/clamd_protocol.h"

namespace mailgate {
namespace {

// Fields only this gateway may vouch for: whatever the message brings under these names is
// dropped, whatever the verdict (design.md §4, as for X-Spam-*).
constexpr std::string_view scanned_field = "X-Virus-Scanned";
constexpr std::string_view status_field = "X-Virus-Status";

// RFC 3463 5.7.0 "other security status": the message is refused for what it carries. The
// signature name is clamd's, cut and reduced to printable ASCII by the parser.
Reply virusReply(const std::string& signature) {
  return Reply::of(554, "5.7.0", "Message refused: virus found (" + signature + ")");
}

const Reply& unavailableReply() {
  static const Reply reply = Reply::of(451, "4.7.0", "Virus scanner unavailable, try again later");
  return reply;
}

void addDetails(Verdict& verdict, std::string_view result, uint64_t scanned_bytes) {
  verdict.details.emplace_back("result", std::string(result));
  verdict.details.emplace_back("scanned_bytes", scanned_bytes);
}

void removeIncoming(Verdict& verdict) {
  for (auto name : {scanned_field, status_field}) {
    bool ours = false;
    for (const auto& header : verdict.headers) ours = ours || header.name == name;
    if (!ours) verdict.headers.push_back({std::string(name), "", true});
  }
}

// Holds one of the stage's max_connections for as long as it lives.
class ConnectionPermit {
 public:
  static std::optional<ConnectionPermit> take(std::shared_ptr<std::atomic<unsigned>> count, unsigned max) {
    unsigned seen = count->load();
    do {
      if (seen >= max) return std::nullopt;
    } while (!count->compare_exchange_weak(seen, seen + 1));
    return ConnectionPermit(std::move(count));
  }
  ConnectionPermit(ConnectionPermit&& other) noexcept = default;
  ConnectionPermit& operator=(ConnectionPermit&&) = delete;
  ~ConnectionPermit() {
    if (count_) count_->fetch_sub(1);
  }

 private:
  explicit ConnectionPermit(std::shared_ptr<std::atomic<unsigned>> count) : count_(std::move(count)) {}
  std::shared_ptr<std::atomic<unsigned>> count_;
};

// One scan, on the session's loop: connect, send the command, then one chunk at a time (the next
// read from the spool only once the last left: clamd's pace bounds what we hold), the end, and
// read the reply. It ends once, by the reply, the peer closing, an error, or the stage's timeout.
struct Scan : std::enable_shared_from_this<Scan> {
  ClamavStage::Policy policy;
  std::shared_ptr<const Spool> message;
  uint64_t limit = 0;  // octets to send
  uint64_t sent = 0;
  bool oversize = false;
  std::optional<ConnectionPermit> permit;
  std::shared_ptr<StreamConnection> connection;
  ClamdReplyReader reader;
  std::optional<Deferred::Resume> resume;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool finished = false;

  void start(NetworkAccess& network) {
    auto self = shared_from_this();
    StreamCallbacks callbacks;
    callbacks.connected = [self](std::string_view error) {
      if (!error.empty()) return self->finish(ClamdReply{ClamdReply::Kind::Error, "connecting to clamd: " + std::string(error)});
      self->connection->write(std::string(instream_command));
      self->pump();
    };
    callbacks.received = [self](std::string_view bytes) {
      if (auto reply = self->reader.feed(bytes)) self->finish(std::move(*reply));
    };
    callbacks.closed = [self](std::string_view why) {
      ClamdReply reply = self->reader.closed();
      if (reply.kind == ClamdReply::Kind::Error && !why.empty()) reply.text += " (" + std::string(why) + ")";
      self->finish(std::move(reply));
    };
    connection = network.connect(policy.clamd, std::move(callbacks),
                                 static_cast<uint64_t>(ClamavStage::connect_timeout.count()));
  }

  void pump() {
    if (finished) return;
    if (sent >= limit) {
      connection->write(instreamEnd());
      return;
    }
    std::string buffer(static_cast<std::size_t>(std::min<uint64_t>(ClamavStage::chunk_octets, limit - sent)), '\0');
    // The spool is in memory or in the page cache (it was written moments ago): a short read.
    auto got = message->read(sent, buffer.data(), buffer.size());
    if (!got || *got == 0) {
      finish(ClamdReply{ClamdReply::Kind::Error, "reading the message: " + (got ? std::string("short read") : got.error())});
      return;
    }
    buffer.resize(*got);
    sent += *got;
    std::weak_ptr<Scan> weak = shared_from_this();
    connection->write(instreamChunk(buffer), [weak] {
      if (auto self = weak.lock()) self->pump();
    });
  }

  uint64_t clamdMs() const {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
  }

  Verdict verdictFor(const ClamdReply& reply) const {
    Verdict verdict;
    switch (reply.kind) {
      case ClamdReply::Kind::Clean: verdict = ClamavStage::clean(sent); break;
      case ClamdReply::Kind::Virus: verdict = ClamavStage::virus(policy, reply.text, sent); break;
      case ClamdReply::Kind::Error: verdict = ClamavStage::trouble(policy, reply.text, sent); break;
    }
    verdict.details.emplace_back("clamd_ms", clamdMs());
    if (oversize) {
      verdict.details.emplace_back("oversize", "scan_prefix");
      verdict.reason += "; only the first " + std::to_string(limit) + " of " + std::to_string(message->size()) +
                        " octets scanned (max_scan_bytes)";
    }
    return verdict;
  }

  // Closes the stream and frees the permit; the first ending answers, the others do nothing.
  void stop() {
    finished = true;
    if (connection) connection->close();
    connection.reset();
    permit.reset();
  }

  void finish(ClamdReply reply) {
    if (finished) return;
    stop();
    if (resume) {
      auto answer = std::move(*resume);
      resume.reset();
      answer(verdictFor(reply));
    }
  }
};

}  // namespace

std::unique_ptr<Stage> ClamavStage::fromSettings(Settings& settings, StageContext&) {
  Policy policy;
  auto clamd = settings.string("clamd");
  if (!clamd || clamd->empty()) {
    settings.fail("clamd", "the clamav stage needs `clamd`: clamd's unix socket path or host:port");
    return nullptr;
  }
  if (clamd->starts_with('/')) {
    // sun_path holds 108 octets with the final NUL (unix(7)).
    if (clamd->size() > 107) settings.fail("clamd", "a unix socket path must be at most 107 octets");
  } else if (auto address = parseHostPort(*clamd, 0); !address) {
    settings.fail("clamd", "must be a unix socket path (\"/run/clamav/clamd.ctl\") or an IP address with a port (\"127.0.0.1:3310\"): " + address.error());
  } else if (address->port == 0) {
    settings.fail("clamd", "needs a port, e.g. \"127.0.0.1:3310\"");
  }
  policy.clamd = *clamd;
  readPolicyAction(settings, "on_virus", policy.on_virus);
  if (policy.on_virus == PolicyAction::Accept)
    settings.fail("on_virus", "must be one of reject, tempfail, tag (a virus is never passed on unmarked)");
  readPolicyAction(settings, "on_error", policy.on_error);
  if (policy.on_error == PolicyAction::Reject)
    settings.fail("on_error", "must be one of tempfail, accept, tag (trouble on our side is never a 5xx)");
  if (auto bytes = settings.size("max_scan_bytes")) {
    if (*bytes < 1024 || *bytes > 4ULL * 1024 * 1024 * 1024 - 1) settings.fail("max_scan_bytes", "must be between 1KiB and 4GiB");
    else policy.max_scan_bytes = *bytes;
  }
  if (auto oversize = settings.string("on_oversize")) {
    if (*oversize == "scan_prefix") policy.on_oversize = Oversize::ScanPrefix;
    else if (*oversize == "error") policy.on_oversize = Oversize::Error;
    else settings.fail("on_oversize", "must be scan_prefix or error");
  }
  if (auto max = settings.integer("max_connections", 1, 10000)) policy.max_connections = static_cast<unsigned>(*max);
  if (!settings.ok()) return nullptr;
  return std::make_unique<ClamavStage>(std::move(policy));
}

Verdict ClamavStage::clean(uint64_t scanned_bytes) {
  Verdict verdict = Verdict::proceed("clean");
  verdict.headers.push_back({std::string(scanned_field), "clamav", true});
  removeIncoming(verdict);
  addDetails(verdict, "clean", scanned_bytes);
  return verdict;
}

Verdict ClamavStage::virus(const Policy& policy, const std::string& signature, uint64_t scanned_bytes) {
  std::string reason = "virus found: " + signature;
  Verdict verdict = mailgate::verdictFor(policy.on_virus, virusReply(signature), reason);
  if (!verdict.ends()) {
    verdict.headers.push_back({std::string(status_field), "Infected (" + signature + ")", true});
    verdict.headers.push_back({std::string(scanned_field), "clamav", true});
  }
  removeIncoming(verdict);
  addDetails(verdict, "virus", scanned_bytes);
  verdict.details.emplace_back("signature", signature);
  return verdict;
}

Verdict ClamavStage::trouble(const Policy& policy, const std::string& why, uint64_t scanned_bytes) {
  Verdict verdict = mailgate::verdictFor(policy.on_error, unavailableReply(), "not scanned: " + why);
  if (policy.on_error == PolicyAction::Tag) verdict.headers.push_back({std::string(status_field), "Unscanned", true});
  removeIncoming(verdict);
  addDetails(verdict, "error", scanned_bytes);
  return verdict;
}

Step ClamavStage::check(const StageInput& input) const {
  if (!input.message) return Verdict::proceed("no message");
  uint64_t size = input.message->size();
  if (size > policy_.max_scan_bytes && policy_.on_oversize == Oversize::Error) {
    Verdict verdict = trouble(policy_, "the message (" + std::to_string(size) + " octets) is larger than max_scan_bytes (" +
                                           std::to_string(policy_.max_scan_bytes) + ")", 0);
    verdict.details.emplace_back("oversize", "error");
    return verdict;
  }
  if (!input.network) return trouble(policy_, "no network access here", 0);
  auto permit = ConnectionPermit::take(open_connections_, policy_.max_connections);
  if (!permit)
    return trouble(policy_, "all max_connections (" + std::to_string(policy_.max_connections) + ") to clamd are in use", 0);

  auto scan = std::make_shared<Scan>();
  scan->policy = policy_;
  scan->message = input.message;
  scan->limit = std::min(size, policy_.max_scan_bytes);
  scan->oversize = size > policy_.max_scan_bytes;
  scan->permit.emplace(std::move(*permit));
  NetworkAccess* network = input.network;
  return Deferred{
      [scan, network](Deferred::Resume resume) {
        scan->resume = std::move(resume);
        scan->start(*network);
      },
      [scan] { scan->stop(); },
      [scan] {
        return scan->verdictFor(ClamdReply{ClamdReply::Kind::Error, "clamd did not answer within the stage's timeout (" +
                                                                        std::to_string(scan->sent) + " octets sent)"});
      }};
}

}  // namespace mailgate
