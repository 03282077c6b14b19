// The decision history's store with a real SQLite file: what the writer keeps is found by every
// kind of search exactly as `mailgate log`'s filter finds it in the lines, and the retention and
// size bounds delete the oldest decisions.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/history/history_database.h"
#include "gateway/history/history_page.h"
#include "gateway/history/history_reader.h"
#include "gateway/history/history_writer.h"
#include "gateway/logtool/log_options.h"
#include "tests/unit/temp_directory.h"

namespace mailgate {
namespace {

using namespace std::chrono_literals;

std::string transaction(const std::string& time, const std::string& ip, const std::string& sender,
                        std::vector<std::string> recipients, const std::string& action, const std::string& subject,
                        const std::string& rule = "") {
  nlohmann::json stages = nlohmann::json::array({{{"stage", "size_limit"}, {"verdict", "continue"}}});
  if (!rule.empty())
    stages.push_back({{"stage", "rules"},
                      {"verdict", action == "reject" ? "reject" : "tag"},
                      {"reason", "score 9"},
                      {"reply", action == "reject" ? "550 5.7.1 spam" : ""},
                      {"hits", {{{"rule", rule}, {"score", 9.0}, {"description", "d"}}}}});
  nlohmann::json listed = nlohmann::json::array();
  for (const auto& recipient : recipients) listed.push_back({{"address", recipient}, {"reply", "250 2.1.5 Ok"}});
  nlohmann::json record = {{"time", time},          {"type", "transaction"}, {"client", {{"ip", ip}, {"port", 5000}}},
                           {"helo", "client.test"}, {"sender", sender},      {"recipients", listed},
                           {"subject", subject},    {"message_id", "<" + subject.substr(0, 20) + "@id>"},
                           {"stages", stages},      {"action", action},      {"reply", action == "reject" ? "550 5.7.1 spam" : "250 2.0.0 Ok"}};
  return record.dump();
}

std::vector<std::string> sampleRecords() {
  return {
      transaction("2026-12-07T10:00:00.000Z", "192.0.2.7", "alice@Sender.Example", {"bob@example.org"}, "accept", "minutes"),
      transaction("2026-12-07T10:05:00.000Z", "192.0.2.200", "x@mail.sender.example", {"carol@sub.example.net"}, "tag", "prize", "PRIZE"),
      transaction("2026-12-07T11:00:00.000Z", "2001:db8::5", "", {"dave@example.org", "eve@example.org"}, "reject", "wire", "WIRE"),
      transaction("2026-12-07T12:00:00.000Z", "198.51.100.1", "spam@sendersexample.com", {"bob@example.org"}, "accept", "100% off_now"),
      R"({"time":"2026-12-07T12:30:00.000Z","type":"connection","client":{"ip":"203.0.113.9","port":1},"action":"reject","reason":"too many connections","reply":"421 4.7.0 Too many"})",
  };
}

std::vector<std::string> store(const std::filesystem::path& file, const std::vector<std::string>& lines, HistoryConfig config = {}) {
  config.path = file.string();
  auto writer = HistoryWriter::start(config);
  BOOST_REQUIRE_MESSAGE(writer.has_value(), writer.error());
  for (const auto& line : lines) (*writer)->take(line);
  (*writer)->stop(5000ms);
  BOOST_TEST((*writer)->stored() == lines.size());
  return lines;
}

// What `mailgate log`'s filter selects from the lines, and what the history finds.
std::vector<std::string> byFilter(const std::vector<std::string>& lines, const logtool::RecordFilter& filter) {
  std::vector<std::string> out;
  logtool::RecordReader reader;
  for (const auto& line : lines) {
    std::string padded = line + std::string(logtool::RecordReader::padding_octets, '\0');
    std::string_view text(padded.data(), line.size());
    const auto* record = reader.read(text);
    BOOST_REQUIRE(record != nullptr);
    if (filter.lineMatches(text) && filter.recordMatches(*record) && filter.decisionMatches(logtool::decisionOf(*record)))
      out.push_back(line);
  }
  return out;
}

std::vector<std::string> byHistory(HistoryReader& reader, const logtool::RecordFilter& filter, HistoryScan order = {}) {
  std::vector<std::string> out;
  auto scanned = reader.scan(filter, order, [&](int64_t, std::string_view line, const logtool::LogRecord&) {
    out.emplace_back(line);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(scanned.has_value(), scanned.error());
  return out;
}

logtool::RecordFilter filterOf(std::vector<std::string> arguments) {
  auto options = logtool::parseLogArguments(arguments, 1'796'700'000'000);
  BOOST_REQUIRE_MESSAGE(options.has_value(), options.error());
  return options->filter;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(history)

BOOST_AUTO_TEST_CASE(every_search_finds_what_the_log_filter_finds) {
  test::TempDirectory folder("mailgate-history");
  auto lines = store(std::filesystem::path(folder.path()) / "h.sqlite", sampleRecords());
  auto reader = HistoryReader::open((std::filesystem::path(folder.path()) / "h.sqlite").string());
  BOOST_REQUIRE(reader.has_value());
  const std::vector<std::pair<std::vector<std::string>, std::size_t>> queries = {
      {{}, 5},
      {{"--from", "sender.example"}, 2},  // and its subdomain; not sendersexample.com
      {{"--from", "ALICE@sender.example"}, 1},
      {{"--from", "<>"}, 1},
      {{"--to", "example.net"}, 1},
      {{"--to", "example.org"}, 3},
      {{"--to", "eve@example.org"}, 1},
      {{"--client", "192.0.2.0/25"}, 1},
      {{"--client", "192.0.2.0/24"}, 2},
      {{"--client", "2001:db8::/32"}, 1},
      {{"--client", "203.0.113.9"}, 1},
      {{"--action", "reject"}, 2},
      {{"--action", "accept,tag"}, 3},
      {{"--rule", "prize"}, 1},
      {{"--stage", "rules"}, 2},
      {{"--message-id", "wire@id"}, 1},
      {{"--subject", "100%"}, 1},  // LIKE's own characters taken literally
      {{"--subject", "0% off_"}, 1},
      {{"--subject", "_"}, 1},
      {{"--since", "2026-12-07 10:30", "--until", "2026-12-07T12:00:00Z"}, 1},
      {{"too", "many"}, 1},
      {{"--from", "sender.example", "--action", "tag"}, 1},
  };
  for (const auto& [arguments, expected] : queries) {
    auto filter = filterOf(arguments);
    auto found = byHistory(*reader, filter);
    BOOST_TEST(found == byFilter(lines, filter));
    BOOST_TEST(found.size() == expected, (arguments.empty() ? std::string("(all)") : arguments.front()) << " found " << found.size());
  }
}

BOOST_AUTO_TEST_CASE(pages_go_back_and_forth_by_id) {
  test::TempDirectory folder("mailgate-history");
  auto lines = store(std::filesystem::path(folder.path()) / "h.sqlite", sampleRecords());
  auto reader = HistoryReader::open((std::filesystem::path(folder.path()) / "h.sqlite").string());
  BOOST_REQUIRE(reader.has_value());
  logtool::RecordFilter all;
  HistoryScan newest_first;
  newest_first.newest_first = true;
  auto newest = byHistory(*reader, all, newest_first);
  BOOST_TEST(newest.front() == lines.back());
  HistoryScan before = newest_first;
  before.before_id = 3;
  auto older = byHistory(*reader, all, before);
  BOOST_TEST(older == (std::vector<std::string>{lines[1], lines[0]}));
  HistoryScan after;
  after.after_id = 3;
  auto later = byHistory(*reader, all, after);
  BOOST_TEST(later == (std::vector<std::string>{lines[3], lines[4]}));
  BOOST_TEST(reader->record(2).value_or("") == lines[1]);
  BOOST_TEST(!reader->record(99).has_value());
  BOOST_TEST(reader->extent().decisions == 5);
}

BOOST_AUTO_TEST_CASE(the_size_bound_deletes_the_oldest_and_keeps_the_newest) {
  test::TempDirectory folder("mailgate-history");
  HistoryConfig config;
  config.path = (std::filesystem::path(folder.path()) / "h.sqlite").string();
  config.max_size = 1 << 20;
  config.retention = std::chrono::hours(24 * 365 * 100);
  auto writer = HistoryWriter::start(config);
  BOOST_REQUIRE(writer.has_value());
  std::string padding(1500, 'x');
  std::string time = DecisionLog::timestamp();
  constexpr int records = 3000;  // about 5 MiB of records: within the writer's queue
  for (int i = 0; i < records; ++i)
    (*writer)->take(transaction(time, "192.0.2.1", "s" + std::to_string(i) + "@example.com", {"r@example.org"}, "accept",
                                "n" + std::to_string(i) + padding));
  (*writer)->stop(10'000ms);
  BOOST_TEST((*writer)->stored() == uint64_t{records});
  // The bound is enforced when a writer starts and at its sweeps.
  auto again = HistoryWriter::start(config);
  BOOST_REQUIRE(again.has_value());
  (*again)->stop(5000ms);
  BOOST_TEST((*again)->deleted() > 0u);
  auto db = openHistory(config.path, HistoryAccess::Read);
  BOOST_REQUIRE(db.has_value());
  auto count = [&](const char* sql) {
    auto statement = sqlitePrepare(db->get(), sql);
    sqlite3_step(statement->get());
    return sqlite3_column_int64(statement->get(), 0);
  };
  BOOST_TEST(count("PRAGMA page_size") * (count("PRAGMA page_count") - count("PRAGMA freelist_count")) <= int64_t{1} << 20);
  BOOST_TEST(count("SELECT count(*) FROM decisions") > 0);
  BOOST_TEST(count("SELECT max(id) FROM decisions") == records);  // the newest stays
  BOOST_TEST(count("SELECT count(*) FROM recipients WHERE decision < (SELECT min(id) FROM decisions)") == 0);
  BOOST_TEST(std::filesystem::file_size(config.path) <= std::uintmax_t{2} << 20);  // pages given back
}

BOOST_AUTO_TEST_CASE(keys_order_networks_and_domains_as_ranges) {
  BOOST_TEST(reversedDomain("Mail.Example.COM") == "com.example.mail.");
  BOOST_TEST(domainOf("a@b.example") == "b.example");
  BOOST_TEST(domainOf("postmaster") == "");
  auto network = logtool::IpNetwork::parse("192.0.2.0/24");
  BOOST_REQUIRE(network.has_value());
  auto [first, last] = clientKeyRange(*network);
  BOOST_TEST((*clientKey("192.0.2.0") == first));
  BOOST_TEST((*clientKey("192.0.2.255") == last));
  BOOST_TEST((*clientKey("192.0.3.0") > last));
  BOOST_TEST((*clientKey("::ffff:192.0.2.9") >= first));  // a mapped address is the IPv4 one
  BOOST_TEST(!clientKey("not an address").has_value());
}

BOOST_AUTO_TEST_CASE(check_history_path_names_the_mistake_and_creates_nothing) {
  test::TempDirectory folder("mailgate-history");
  BOOST_TEST(checkHistoryPath((std::filesystem::path(folder.path()) / "h.sqlite").string()) == "");
  BOOST_TEST(!std::filesystem::exists(std::filesystem::path(folder.path()) / "h.sqlite"));
  BOOST_TEST(checkHistoryPath((std::filesystem::path(folder.path()) / "no" / "h.sqlite").string()).find("no folder") != std::string::npos);
  BOOST_TEST(checkHistoryPath(folder.path()).find("is a folder") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_page_escapes_what_senders_wrote) {
  BOOST_TEST(htmlEscaped("<script>alert('x')</script> & \"q\"") ==
             "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
  test::TempDirectory folder("mailgate-history");
  store(std::filesystem::path(folder.path()) / "h.sqlite",
        {transaction("2026-12-07T10:00:00.000Z", "192.0.2.7", "a\"><img src=x>@example.com", {"b@example.org"}, "accept",
                     "<script>alert(1)</script>")});
  HistoryPage page((std::filesystem::path(folder.path()) / "h.sqlite").string());
  auto none = [](const char*) -> std::optional<std::string> { return std::nullopt; };
  PageReply reply = page.answer("/history", none);
  BOOST_TEST(reply.status == 200u);
  BOOST_TEST(reply.body.find("<script>") == std::string::npos);
  BOOST_TEST(reply.body.find("<img") == std::string::npos);
  BOOST_TEST(reply.body.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  PageReply detail = page.answer("/history/decision", [](const char* name) -> std::optional<std::string> {
    if (std::string_view(name) == "id") return "1";
    return std::nullopt;
  });
  BOOST_TEST(detail.status == 200u);
  BOOST_TEST(detail.body.find("<script>") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_page_answers_503_when_the_history_cannot_be_read) {
  test::TempDirectory folder("mailgate-history");
  HistoryPage page((std::filesystem::path(folder.path()) / "missing.sqlite").string());
  auto none = [](const char*) -> std::optional<std::string> { return std::nullopt; };
  for (const char* url : {"/history", "/history/summary"}) {
    PageReply reply = page.answer(url, none);
    BOOST_TEST(reply.status == 503u, url);
    BOOST_TEST(reply.body.find("missing.sqlite") != std::string::npos);
  }
  PageReply detail = page.answer("/history/decision", [](const char*) -> std::optional<std::string> { return "1"; });
  BOOST_TEST(detail.status == 503u);
  BOOST_TEST(page.answer("/history/elsewhere", none).status == 404u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
