#pragma once
// The embedded greylisting store: one SQLite file (Debian's libsqlite3), by default
// var/state/greylist.sqlite beside the Maildir default, so greylisting works and survives a restart
// with no setting. Used from the thread pool only, one check at a time per store (a mutex: each
// check is a few indexed reads and writes); gateway processes sharing one file wait for each
// other through SQLite's own lock (busy timeout).

#include <memory>
#include <mutex>
#include <string>

#include "filters/greylist/greylist_store.h"

struct sqlite3;

namespace mailgate {

class SqliteStore final : public GreylistStore {
 public:
  // Opening is left to the first check, on the pool: --check-config creates nothing.
  explicit SqliteStore(std::string path);
  ~SqliteStore() override;

  std::move_only_function<void()> apply(const StageInput& input, const GreylistKeys& keys, Decide decide,
                                        Done done) const override;
  std::string describe() const override { return "sqlite " + path_; }

  // Blocking: the read, the decision and the write in one transaction (for the pool, and tests).
  std::expected<GreylistDecision, std::string> applyNow(const GreylistKeys& keys, const Decide& decide) const;

 private:
  std::expected<void, std::string> open() const;  // under mutex_

  std::string path_;
  mutable std::mutex mutex_;
  mutable sqlite3* db_ = nullptr;
  mutable uint64_t writes_ = 0;
};

}  // namespace mailgate
