#pragma once
// SQLite (Debian libsqlite3-dev), included only through this shim (design.md §5, habit 2): the
// database and statement handles as RAII, and the calls the decision history repeats.

#include <sqlite3.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/util/c_free.h"

namespace mailgate {

using SqliteDatabase = std::unique_ptr<sqlite3, CFree<&sqlite3_close>>;
using SqliteStatement = std::unique_ptr<sqlite3_stmt, CFree<&sqlite3_finalize>>;

inline std::string sqliteProblem(sqlite3* db, std::string_view what) {
  return std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory");
}

inline std::expected<SqliteDatabase, std::string> sqliteOpen(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int opened = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteDatabase db(raw);
  if (opened != SQLITE_OK) return std::unexpected(sqliteProblem(db.get(), path));
  return db;
}

inline std::expected<SqliteStatement, std::string> sqlitePrepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr) != SQLITE_OK)
    return std::unexpected(sqliteProblem(db, "prepare"));
  return SqliteStatement(raw);
}

inline std::expected<void, std::string> sqliteExec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK) return {};
  std::string why = message != nullptr ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  return std::unexpected(why);
}

// Text bound for the statement's life only (the caller's string outlives the step).
inline void sqliteBind(sqlite3_stmt* statement, int index, std::string_view text) {
  // An empty view may have no data at all, which SQLite would bind as NULL.
  sqlite3_bind_text(statement, index, text.empty() ? "" : text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}
inline void sqliteBindBlob(sqlite3_stmt* statement, int index, std::string_view bytes) {
  sqlite3_bind_blob(statement, index, bytes.empty() ? "" : bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
}
inline void sqliteBind(sqlite3_stmt* statement, int index, int64_t number) {
  sqlite3_bind_int64(statement, index, number);
}

inline std::string_view sqliteText(sqlite3_stmt* statement, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, column));
  if (text == nullptr) return {};
  return {text, static_cast<std::size_t>(sqlite3_column_bytes(statement, column))};
}

}  // namespace mailgate
