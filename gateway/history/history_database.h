#pragma once
// The decision history's SQLite file (README "The decision history"): the schema, and the keys
// its indexes hold. The gateway writes it (HistoryWriter); `mailgate log --history` and the web
// page read it (HistoryReader), in WAL mode so that readers never wait for the writer.
//
// One row per decision record with the record's JSON line as it was logged, plus the columns the
// searches narrow by: time, action, the client's address (a blob, so that a CIDR is a range),
// sender and recipients (folded; domains reversed, "com.example.", so that a domain and its
// subdomains are a range), Message-ID, the deciding stage and the rules that hit. A search narrows
// with the indexes, then the same filter as `mailgate log` checks each record it found, so both
// give the same answers.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/c/sqlite.h"
#include "gateway/logtool/ip_network.h"

namespace mailgate {

enum class HistoryAccess { Write, Read };

// Write: creates the file and schema when missing. Read: the file must exist.
std::expected<SqliteDatabase, std::string> openHistory(const std::string& path, HistoryAccess access);

// --check-config: the file can be created or opened for writing, and is an SQLite file when it
// exists; "" when so, else what is wrong. Creates nothing.
std::string checkHistoryPath(const std::string& path);

// "Mail.Example.COM" → "com.example.mail." (folded, labels reversed, a dot after each).
std::string reversedDomain(std::string_view domain);
// The domain part of an address, "" when it has none.
std::string_view domainOf(std::string_view address);
// 17 octets: 4 or 6, then the address in network order (IPv4 in the first four, zero after), so
// that every address of a network lies between its first and its last key.
std::string clientKey(const logtool::IpAddress& address);
std::optional<std::string> clientKey(std::string_view address);
// The first and last keys of a network.
std::pair<std::string, std::string> clientKeyRange(const logtool::IpNetwork& network);

}  // namespace mailgate
