#include "gateway/history/history_writer.h"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "gateway/history/history_database.h"
#include "gateway/logtool/decision.h"
#include "gateway/logtool/log_record.h"
#include "gateway/logtool/record_filter.h"
#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

using Clock = std::chrono::steady_clock;

// How long the writer gathers records before it stores them, and how many make a batch at once.
constexpr std::chrono::milliseconds batch_gathering{250};
constexpr std::size_t batch_records = 2000;

// How often the retention and the size bound are enforced: often enough that the file stays near
// its bound, rarely enough that the sweeps cost nothing measurable (a short retention, in tests,
// sweeps more often).
constexpr std::chrono::milliseconds sweep_interval{60'000};
// Past max_size, rows are deleted in proportion to the excess; a few rounds settle what the
// indexes' share of the pages makes uneven.
constexpr int max_size_rounds = 5;
// Deletes in steps, so that no read waits long behind one transaction.
constexpr int64_t delete_step_rows = 20'000;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t queryNumber(sqlite3* db, const char* sql) {
  auto statement = sqlitePrepare(db, sql);
  if (!statement || sqlite3_step(statement->get()) != SQLITE_ROW) return 0;
  return sqlite3_column_int64(statement->get(), 0);
}

}  // namespace

std::expected<std::shared_ptr<HistoryWriter>, std::string> HistoryWriter::start(const HistoryConfig& config) {
  auto db = openHistory(config.path, HistoryAccess::Write);
  if (!db) return std::unexpected(db.error());
  auto writer = std::make_shared<HistoryWriter>(config, std::move(*db));
  if (auto prepared = writer->prepare(); !prepared) return std::unexpected("history " + config.path + ": " + prepared.error());
  // A history left past its bounds (a smaller max_size, a shorter retention, a long stop) is
  // brought within them before the first record is added.
  writer->enforceBounds();
  writer->next_sweep_ = Clock::now() + writer->sweepInterval();
  // Started once the statements exist: the connection is the thread's alone from here on.
  writer->thread_ = std::thread([raw = writer.get()] { raw->run(); });
  return writer;
}

HistoryWriter::HistoryWriter(HistoryConfig config, SqliteDatabase db)
    : config_(std::move(config)), db_(std::move(db)) {}

HistoryWriter::~HistoryWriter() { stop(std::chrono::milliseconds(5000)); }

std::expected<void, std::string> HistoryWriter::prepare() {
  auto decision = sqlitePrepare(db_.get(),
                                "INSERT INTO decisions (time_ms, type, action, client, sender, sender_rdomain, subject, "
                                "message_id, stage, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  auto recipient = sqlitePrepare(db_.get(), "INSERT INTO recipients (decision, seq, address, rdomain) VALUES (?, ?, ?, ?)");
  auto rule = sqlitePrepare(db_.get(), "INSERT INTO rule_hits (decision, seq, rule) VALUES (?, ?, ?)");
  if (!decision) return std::unexpected(decision.error());
  if (!recipient) return std::unexpected(recipient.error());
  if (!rule) return std::unexpected(rule.error());
  insert_decision_ = std::move(*decision);
  insert_recipient_ = std::move(*recipient);
  insert_rule_ = std::move(*rule);
  return {};
}

void HistoryWriter::take(std::string_view line) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queued_octets_ + line.size() > queue_limit_octets) {
      ++dropped_;
      return;
    }
    queued_octets_ += line.size();
    queue_.emplace_back(line);
    // The thread is told of the first record, and of a full batch while it gathers.
    if (queue_.size() != 1 && queue_.size() != batch_records) return;
  }
  wake_.notify_one();
}

void HistoryWriter::stop(std::chrono::milliseconds bound) {
  {
    std::unique_lock lock(mutex_);
    if (!thread_.joinable()) return;
    flushing_ = true;  // no gathering now: what is queued is stored at once
    wake_.notify_one();
    // What is queued is stored if the bound allows; a history stuck behind a reader's lock past
    // it loses the rest (counted), or the process could not exit.
    idle_.wait_for(lock, bound, [&] { return queue_.empty() && !busy_; });
    dropped_ += queue_.size();
    queue_.clear();
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void HistoryWriter::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    auto until_sweep = next_sweep_ - Clock::now();
    wake_.wait_for(lock, std::max<Clock::duration>(until_sweep, std::chrono::milliseconds(1)),
                   [&] { return !queue_.empty() || stopping_; });
    if (stopping_) return;
    // A transaction writes every page its inserts touched to the WAL, a dozen index pages for one
    // record as for fifty: records gathered for a moment cost a fraction each (the log file has
    // them at once; the history is for searching, a fraction of a second later).
    if (!queue_.empty())
      wake_.wait_for(lock, batch_gathering, [&] { return stopping_ || flushing_ || queue_.size() >= batch_records; });
    std::vector<std::string> batch;
    batch.swap(queue_);
    queued_octets_ = 0;
    busy_ = true;
    lock.unlock();
    if (!batch.empty()) {
      auto stored = store(batch);
      if (!stored) {
        dropped_ += batch.size();
        if (!failing_) std::fprintf(stderr, "mailgate: history %s: %s\n", config_.path.c_str(), stored.error().c_str());
      } else if (failing_) {
        std::fprintf(stderr, "mailgate: history %s: storing again\n", config_.path.c_str());
      }
      failing_ = !stored;
    }
    if (Clock::now() >= next_sweep_) {
      enforceBounds();
      next_sweep_ = Clock::now() + sweepInterval();
    }
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

std::expected<void, std::string> HistoryWriter::store(const std::vector<std::string>& lines) {
  sqlite3* db = db_.get();
  if (auto begun = sqliteExec(db, "BEGIN IMMEDIATE"); !begun) return std::unexpected(begun.error());
  logtool::RecordReader reader;
  std::string padded;
  uint64_t count = 0;
  for (const std::string& line : lines) {
    padded.assign(line);
    padded.append(logtool::RecordReader::padding_octets, '\0');
    const logtool::LogRecord* record = reader.read(std::string_view(padded.data(), line.size()));
    if (record == nullptr) continue;  // the gateway's own records always read; never expected
    logtool::Decision decision = logtool::decisionOf(*record);
    sqlite3_stmt* insert = insert_decision_.get();
    sqlite3_reset(insert);
    sqlite3_clear_bindings(insert);
    sqliteBind(insert, 1, record->time_ms.value_or(nowMs()));
    sqliteBind(insert, 2, record->type);
    sqliteBind(insert, 3, record->action);
    std::optional<std::string> client = clientKey(record->client_ip);
    if (client) sqliteBindBlob(insert, 4, *client);
    std::string sender, sender_rdomain;
    if (record->has_sender) {
      sender = asciiLower(record->sender);
      sender_rdomain = reversedDomain(domainOf(sender));
      sqliteBind(insert, 5, sender);
      sqliteBind(insert, 6, sender_rdomain);
    }
    sqliteBind(insert, 7, record->subject);
    std::string_view message_id = logtool::withoutAngleBrackets(record->message_id);
    if (!message_id.empty()) sqliteBind(insert, 8, message_id);
    sqliteBind(insert, 9, decision.stage);
    sqliteBind(insert, 10, std::string_view(line));
    if (sqlite3_step(insert) != SQLITE_DONE) {
      std::string why = sqliteProblem(db, "insert");
      (void)sqliteExec(db, "ROLLBACK");
      return std::unexpected(why);
    }
    int64_t id = sqlite3_last_insert_rowid(db);
    int64_t seq = 0;
    for (const auto& recipient : record->recipients) {
      std::string address = asciiLower(recipient.address);
      std::string rdomain = reversedDomain(domainOf(address));
      sqlite3_stmt* row = insert_recipient_.get();
      sqlite3_reset(row);
      sqliteBind(row, 1, id);
      sqliteBind(row, 2, seq++);
      sqliteBind(row, 3, address);
      sqliteBind(row, 4, rdomain);
      sqlite3_step(row);
    }
    seq = 0;
    for (std::string_view rule : record->rules) {
      sqlite3_stmt* row = insert_rule_.get();
      sqlite3_reset(row);
      sqliteBind(row, 1, id);
      sqliteBind(row, 2, seq++);
      sqliteBind(row, 3, rule);
      sqlite3_step(row);
    }
    ++count;
  }
  if (auto committed = sqliteExec(db, "COMMIT"); !committed) {
    (void)sqliteExec(db, "ROLLBACK");
    return std::unexpected(committed.error());
  }
  stored_ += count;
  return {};
}

std::chrono::milliseconds HistoryWriter::sweepInterval() const {
  return std::min<std::chrono::milliseconds>(sweep_interval,
                                             std::chrono::duration_cast<std::chrono::milliseconds>(config_.retention) / 2);
}

void HistoryWriter::deleteThrough(int64_t last_id) {
  sqlite3* db = db_.get();
  int64_t first = queryNumber(db, "SELECT coalesce(min(id), 0) FROM decisions");
  for (int64_t step_end = std::min(last_id, first + delete_step_rows - 1); first <= last_id;
       first = step_end + 1, step_end = std::min(last_id, first + delete_step_rows - 1)) {
    std::string through = std::to_string(step_end);
    std::string sql = "BEGIN IMMEDIATE; DELETE FROM recipients WHERE decision <= " + through +
                      "; DELETE FROM rule_hits WHERE decision <= " + through + "; DELETE FROM decisions WHERE id <= " +
                      through + "; COMMIT;";
    if (auto deleted = sqliteExec(db, sql.c_str()); !deleted) {
      (void)sqliteExec(db, "ROLLBACK");
      std::fprintf(stderr, "mailgate: history %s: deleting old decisions: %s\n", config_.path.c_str(), deleted.error().c_str());
      return;
    }
    deleted_ += static_cast<uint64_t>(sqlite3_changes(db));
  }
}

void HistoryWriter::enforceBounds() {
  sqlite3* db = db_.get();
  bool deleted_any = false;
  // Retention: decisions are stored in time order, so every id up to the newest expired one goes.
  int64_t cutoff = nowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(config_.retention).count();
  std::optional<int64_t> last_expired;
  {
    // Finalized before anything is deleted: a statement left stepping would hold a read
    // transaction open, and the vacuum and checkpoint below could not finish.
    auto expired = sqlitePrepare(db, "SELECT max(id) FROM decisions WHERE time_ms < ?");
    if (expired) {
      sqliteBind(expired->get(), 1, cutoff);
      if (sqlite3_step(expired->get()) == SQLITE_ROW && sqlite3_column_type(expired->get(), 0) != SQLITE_NULL)
        last_expired = sqlite3_column_int64(expired->get(), 0);
    }
  }
  if (last_expired) {
    deleteThrough(*last_expired);
    deleted_any = true;
  }
  // Size: the pages in use, not the file (freed pages are given back below). The oldest go, as
  // many as bring the history to nine tenths of its bound, so that it is not swept at every batch.
  int64_t page_size = queryNumber(db, "PRAGMA page_size");
  for (int round = 0; round < max_size_rounds; ++round) {
    int64_t used = (queryNumber(db, "PRAGMA page_count") - queryNumber(db, "PRAGMA freelist_count")) * page_size;
    if (used <= static_cast<int64_t>(config_.max_size)) break;
    int64_t lowest = queryNumber(db, "SELECT coalesce(min(id), 0) FROM decisions");
    int64_t highest = queryNumber(db, "SELECT coalesce(max(id), 0) FROM decisions");
    if (highest == 0) break;
    double keep = static_cast<double>(config_.max_size) * 0.9 / static_cast<double>(used);
    int64_t rows = highest - lowest + 1;
    int64_t going = std::clamp<int64_t>(rows - static_cast<int64_t>(static_cast<double>(rows) * keep), 1, rows - 1);
    if (rows == 1) break;  // the newest decision stays, whatever its size
    deleteThrough(lowest + going - 1);
    deleted_any = true;
  }
  if (deleted_any) (void)sqliteExec(db, "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);");
}

}  // namespace mailgate
