#include "gateway/history/history_database.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

// auto_vacuum must be chosen before the first table exists: deleted decisions then give their
// pages back to the file system (incremental_vacuum), so max_size bounds the file, not only the
// pages in use.
constexpr const char* schema = R"(
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  type TEXT NOT NULL,
  action TEXT NOT NULL,
  client BLOB,
  sender TEXT,
  sender_rdomain TEXT,
  subject TEXT NOT NULL,
  message_id TEXT,
  stage TEXT NOT NULL,
  record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (time_ms);
CREATE INDEX IF NOT EXISTS decisions_action ON decisions (action);
CREATE INDEX IF NOT EXISTS decisions_client ON decisions (client);
CREATE INDEX IF NOT EXISTS decisions_sender ON decisions (sender);
CREATE INDEX IF NOT EXISTS decisions_sender_rdomain ON decisions (sender_rdomain);
CREATE INDEX IF NOT EXISTS decisions_message_id ON decisions (message_id);
CREATE TABLE IF NOT EXISTS recipients (
  decision INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  address TEXT NOT NULL,
  rdomain TEXT NOT NULL,
  PRIMARY KEY (decision, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recipients_address ON recipients (address);
CREATE INDEX IF NOT EXISTS recipients_rdomain ON recipients (rdomain);
CREATE TABLE IF NOT EXISTS rule_hits (
  decision INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  rule TEXT NOT NULL COLLATE NOCASE,
  PRIMARY KEY (decision, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rule_hits_rule ON rule_hits (rule);
)";

// A reader waits this long for the writer's lock on the WAL index (rare, and short).
constexpr int busy_timeout_ms = 5000;

}  // namespace

std::expected<SqliteDatabase, std::string> openHistory(const std::string& path, HistoryAccess access) {
  int flags = access == HistoryAccess::Write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
  auto db = sqliteOpen(path, flags);
  if (!db) return std::unexpected("history " + db.error());
  sqlite3_busy_timeout(db->get(), busy_timeout_ms);
  if (access == HistoryAccess::Write) {
    if (auto made = sqliteExec(db->get(), schema); !made) return std::unexpected("history " + path + ": " + made.error());
    // A batch is one transaction; NORMAL keeps WAL durable across a process crash (a power cut may
    // lose the last batches, which the log file still has).
    // The indexes take random inserts: SQLite's default 2 MiB of page cache makes each a read
    // from the file once the history outgrows it.
    (void)sqliteExec(db->get(),
                     "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -65536;");
  } else {
    (void)sqliteExec(db->get(), "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;");
    // Not a history file (or not one yet): say so now rather than at the first search.
    auto probe = sqlitePrepare(db->get(), "SELECT id, record FROM decisions LIMIT 1");
    if (!probe) return std::unexpected("history " + path + ": not a mailgate history (" + probe.error() + ")");
  }
  return db;
}

std::string checkHistoryPath(const std::string& path) {
  std::error_code error;
  std::filesystem::path file(path);
  if (std::filesystem::exists(file, error)) {
    if (std::filesystem::is_directory(file, error)) return "history.path " + path + " is a folder, not a file";
    if (::access(path.c_str(), R_OK | W_OK) != 0) return "history.path " + path + " cannot be written";
    char header[16] = {};
    std::ifstream(file, std::ios::binary).read(header, sizeof header);
    bool empty = std::filesystem::file_size(file, error) == 0;
    if (!empty && std::string_view(header, sizeof header) != std::string_view("SQLite format 3\0", 16))
      return "history.path " + path + " is not an SQLite file";
    return {};
  }
  std::filesystem::path folder = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(folder, error)) return "history.path " + path + ": no folder " + folder.string();
  if (::access(folder.c_str(), W_OK | X_OK) != 0) return "history.path " + path + ": cannot create files in " + folder.string();
  return {};
}

std::string_view domainOf(std::string_view address) {
  auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

std::string reversedDomain(std::string_view domain) {
  std::string folded = asciiLower(domain);
  std::vector<std::string_view> labels;
  std::string_view rest = folded;
  while (!rest.empty()) {
    auto dot = rest.find('.');
    labels.push_back(rest.substr(0, dot));
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  }
  std::string out;
  out.reserve(folded.size() + 1);
  for (auto label = labels.rbegin(); label != labels.rend(); ++label) {
    out += *label;
    out += '.';
  }
  return out;
}

std::string clientKey(const logtool::IpAddress& address) {
  std::string key(17, '\0');
  key[0] = address.v6 ? 6 : 4;
  std::copy(address.octets.begin(), address.octets.end(), key.begin() + 1);
  return key;
}

std::optional<std::string> clientKey(std::string_view address) {
  auto parsed = logtool::IpAddress::parse(address);
  if (!parsed) return std::nullopt;
  return clientKey(*parsed);
}

std::pair<std::string, std::string> clientKeyRange(const logtool::IpNetwork& network) {
  logtool::IpAddress last = network.base();
  unsigned bits = last.v6 ? 128 : 32;
  for (unsigned bit = network.prefix(); bit < bits; ++bit) last.octets[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
  return {clientKey(network.base()), clientKey(last)};
}

}  // namespace mailgate
