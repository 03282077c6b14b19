#include "filters/greylist/sqlite_store.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <system_error>

#include "gateway/pipeline/pipeline.h"
#include "gateway/util/c_free.h"

namespace mailgate {
namespace {

using Statement = std::unique_ptr<sqlite3_stmt, CFree<&sqlite3_finalize>>;

// Another gateway process writing the same file holds its lock this long at most (one check).
constexpr int busy_timeout_ms = 2000;
// Expired rows are swept every this many writes (an indexed DELETE), not at each check.
constexpr uint64_t sweep_every_writes = 1000;

const char* const schema =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS greylist (key TEXT PRIMARY KEY, first_seen INTEGER NOT NULL, "
    "last_seen INTEGER NOT NULL, passes INTEGER NOT NULL, expires INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS greylist_expires ON greylist (expires);";

int64_t secondsNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string problem(sqlite3* db, std::string_view what) { return std::string(what) + ": " + sqlite3_errmsg(db); }

}  // namespace

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {}

SqliteStore::~SqliteStore() {
  if (db_ != nullptr) sqlite3_close(db_);
}

std::expected<void, std::string> SqliteStore::open() const {
  if (db_ != nullptr) return {};
  std::error_code error;
  auto folder = std::filesystem::path(path_).parent_path();
  if (!folder.empty()) std::filesystem::create_directories(folder, error);
  if (error) return std::unexpected("cannot create " + folder.string() + ": " + error.message());
  sqlite3* db = nullptr;
  int opened = sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (opened != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return std::unexpected("cannot open " + path_ + ": " + why);
  }
  sqlite3_busy_timeout(db, busy_timeout_ms);
  char* message = nullptr;
  if (sqlite3_exec(db, schema, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string why = message ? message : "?";
    sqlite3_free(message);
    sqlite3_close(db);
    return std::unexpected("cannot set up " + path_ + ": " + why);
  }
  db_ = db;
  return {};
}

std::expected<GreylistDecision, std::string> SqliteStore::applyNow(const GreylistKeys& keys, const Decide& decide) const {
  std::lock_guard lock(mutex_);
  if (auto opened = open(); !opened) return std::unexpected(opened.error());
  int64_t now = secondsNow();
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return std::unexpected(problem(db_, "begin"));
  auto rollback = [&](std::string why) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return std::unexpected(std::move(why));
  };
  auto prepare = [&](const char* sql) {
    sqlite3_stmt* raw = nullptr;
    sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr);
    return Statement(raw);
  };
  Statement read = prepare("SELECT first_seen, last_seen, passes, expires FROM greylist WHERE key = ?");
  if (!read) return rollback(problem(db_, "read"));
  std::optional<TripletState> triplet;
  int64_t client_passes = 0;
  for (const std::string* key : {&keys.triplet, &keys.client}) {
    sqlite3_reset(read.get());
    sqlite3_bind_text(read.get(), 1, key->data(), static_cast<int>(key->size()), SQLITE_TRANSIENT);
    int step = sqlite3_step(read.get());
    if (step == SQLITE_ROW && sqlite3_column_int64(read.get(), 3) >= now) {
      if (key == &keys.triplet)
        triplet = TripletState{sqlite3_column_int64(read.get(), 0), sqlite3_column_int64(read.get(), 1),
                               sqlite3_column_int64(read.get(), 2)};
      else
        client_passes = sqlite3_column_int64(read.get(), 2);
    } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
      return rollback(problem(db_, "read"));
    }
  }
  GreylistDecision decision = decide(triplet, client_passes);
  Statement write = prepare(
      "INSERT INTO greylist (key, first_seen, last_seen, passes, expires) VALUES (?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(key) DO UPDATE SET first_seen = ?2, last_seen = ?3, passes = ?4, expires = ?5");
  if (!write) return rollback(problem(db_, "write"));
  auto put = [&](const std::string& key, int64_t first, int64_t last, int64_t passes, int64_t expires) {
    sqlite3_reset(write.get());
    sqlite3_bind_text(write.get(), 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(write.get(), 2, first);
    sqlite3_bind_int64(write.get(), 3, last);
    sqlite3_bind_int64(write.get(), 4, passes);
    sqlite3_bind_int64(write.get(), 5, expires);
    return sqlite3_step(write.get()) == SQLITE_DONE;
  };
  const TripletState& state = decision.triplet;
  if (!put(keys.triplet, state.first_seen, state.last_seen, state.passes, now + decision.triplet_ttl))
    return rollback(problem(db_, "write"));
  if (decision.client_passed && !put(keys.client, now, now, client_passes + 1, now + decision.client_ttl))
    return rollback(problem(db_, "write"));
  if (++writes_ % sweep_every_writes == 0) {
    Statement sweep = prepare("DELETE FROM greylist WHERE expires < ?");
    if (sweep) {
      sqlite3_bind_int64(sweep.get(), 1, now);
      sqlite3_step(sweep.get());
    }
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return rollback(problem(db_, "commit"));
  return decision;
}

std::move_only_function<void()> SqliteStore::apply(const StageInput& input, const GreylistKeys& keys, Decide decide,
                                                   Done done) const {
  // Past this the check passes (the stage's own timeout would make it a 451).
  constexpr auto store_timeout = std::chrono::seconds(10);
  struct Pending {
    std::mutex mutex;
    std::optional<std::expected<GreylistDecision, std::string>> result;
    bool abandoned = false;  // loop only
  };
  auto pending = std::make_shared<Pending>();
  auto shared_done = std::make_shared<Done>(std::move(done));
  // The job keeps the store alive: a reload may drop the pipeline that owns it meanwhile.
  auto self = std::static_pointer_cast<const SqliteStore>(shared_from_this());
  input.background->submit(
      [self, pending, keys, decide = std::move(decide)](std::stop_token) {
        auto result = self->applyNow(keys, decide);
        std::lock_guard lock(pending->mutex);
        pending->result = std::move(result);
        return Verdict::proceed();
      },
      store_timeout,
      [pending, shared_done](std::optional<Verdict>) {
        if (pending->abandoned) return;
        std::optional<std::expected<GreylistDecision, std::string>> result;
        {
          std::lock_guard lock(pending->mutex);
          result = pending->result;
        }
        (*shared_done)(result ? std::move(*result) : std::unexpected(std::string("the store did not answer in time")));
      });
  return [pending] { pending->abandoned = true; };
}

}  // namespace mailgate
