#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gateway/delivery/maildir.h"
#include "gateway/spool/spool.h"

namespace mailgate {

namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed with everything delivered into it.
class MaildirDirectory {
 public:
  MaildirDirectory() {
    std::string pattern = "/tmp/mailgate-maildir-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~MaildirDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  MaildirDirectory(const MaildirDirectory&) = delete;
  MaildirDirectory& operator=(const MaildirDirectory&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string fileContent(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

std::size_t entries(const fs::path& folder) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(folder), fs::directory_iterator()));
}

Maildir openMaildir(const std::string& path) {
  auto maildir = Maildir::open(path);
  if (!maildir) throw std::runtime_error(maildir.error());
  return std::move(*maildir);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(maildir)

BOOST_FIXTURE_TEST_CASE(open_creates_the_folders_and_their_parents, MaildirDirectory) {
  std::string root = path() + "/a/b/Maildir";
  auto maildir = Maildir::open(root);
  BOOST_REQUIRE(maildir.has_value());
  BOOST_TEST(maildir->path() == root);
  for (const char* folder : {"", "/tmp", "/new", "/cur"}) {
    BOOST_TEST(fs::is_directory(root + folder), root + folder);
  }
  auto perms = fs::status(root + "/new").permissions();
  BOOST_TEST(((perms & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none));
  BOOST_TEST(Maildir::open(root).has_value());  // existing folders are fine
}

BOOST_AUTO_TEST_CASE(open_under_a_file_fails) {
  auto maildir = Maildir::open("/etc/passwd/x");
  BOOST_REQUIRE(!maildir.has_value());
  BOOST_TEST(maildir.error().find("/etc/passwd/x") != std::string::npos, maildir.error());
  BOOST_TEST(maildir.error().find("Not a directory") != std::string::npos, maildir.error());
}

BOOST_FIXTURE_TEST_CASE(deliver_writes_headers_and_content_into_new, MaildirDirectory) {
  Maildir maildir = openMaildir(path());
  Spool spool(path(), 1024);
  BOOST_REQUIRE(spool.append("Subject: hi\r\n\r\nbody line\r\n").has_value());
  std::string headers = "Received: from x by y\r\n";

  auto name = maildir.deliver(headers, spool);
  BOOST_REQUIRE(name.has_value());
  BOOST_TEST(fileContent(path() + "/new/" + *name) == headers + "Subject: hi\r\n\r\nbody line\r\n");
  BOOST_TEST(entries(path() + "/tmp") == 0u);
  BOOST_TEST(entries(path() + "/new") == 1u);
  BOOST_TEST(name->find('/') == std::string::npos);
  BOOST_TEST(name->find(':') == std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(two_deliveries_get_different_names, MaildirDirectory) {
  Maildir maildir = openMaildir(path());
  Spool spool(path(), 1024);
  BOOST_REQUIRE(spool.append("x\r\n").has_value());
  auto first = maildir.deliver("", spool);
  auto second = maildir.deliver("", spool);
  BOOST_REQUIRE(first.has_value());
  BOOST_REQUIRE(second.has_value());
  BOOST_TEST(*first != *second);
  BOOST_TEST(entries(path() + "/new") == 2u);
}

BOOST_FIXTURE_TEST_CASE(concurrent_deliveries_all_arrive, MaildirDirectory) {
  constexpr int threads = 8;
  constexpr int per_thread = 50;
  Maildir maildir = openMaildir(path());
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> delivered;  // name, expected content
  std::vector<std::string> errors;
  {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int m = 0; m < per_thread; ++m) {
          std::string body = "thread " + std::to_string(t) + " message " + std::to_string(m) + "\r\n";
          Spool spool(path(), 1024);
          auto appended = spool.append(body);
          auto name = maildir.deliver("X-Test: yes\r\n\r\n", spool);
          std::lock_guard lock(mutex);
          if (!appended) errors.push_back(appended.error());
          if (name) delivered.emplace_back(*name, "X-Test: yes\r\n\r\n" + body);
          else errors.push_back(name.error());
        }
      });
    }
  }
  BOOST_TEST(errors.empty(), (errors.empty() ? "" : errors.front()));
  std::set<std::string> names;
  std::size_t wrong = 0;
  for (const auto& [name, content] : delivered) {
    names.insert(name);
    wrong += fileContent(path() + "/new/" + name) != content;
  }
  BOOST_TEST(names.size() == std::size_t{threads * per_thread});
  BOOST_TEST(wrong == 0u);
  BOOST_TEST(entries(path() + "/new") == std::size_t{threads * per_thread});
  BOOST_TEST(entries(path() + "/tmp") == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_spool_on_disk_is_delivered_whole, MaildirDirectory) {
  Maildir maildir = openMaildir(path());
  Spool spool(path(), 1000);
  std::string content;
  for (int i = 0; content.size() < 300 * 1000; ++i) content += "line " + std::to_string(i) + "\r\n";
  BOOST_REQUIRE(spool.append(content).has_value());
  BOOST_REQUIRE(spool.onDisk());
  auto name = maildir.deliver("H: v\r\n", spool);
  BOOST_REQUIRE(name.has_value());
  BOOST_TEST((fileContent(path() + "/new/" + *name) == "H: v\r\n" + content));
}

BOOST_FIXTURE_TEST_CASE(failed_delivery_says_why_and_leaves_nothing, MaildirDirectory) {
  Maildir maildir = openMaildir(path());
  Spool spool(path(), 1024);
  BOOST_REQUIRE(spool.append("x\r\n").has_value());
  fs::remove(path() + "/new");  // the rename has nowhere to go
  auto name = maildir.deliver("", spool);
  BOOST_REQUIRE(!name.has_value());
  BOOST_TEST(name.error().find(path() + "/new/") != std::string::npos, name.error());
  BOOST_TEST(name.error().find("No such file or directory") != std::string::npos, name.error());
  BOOST_TEST(entries(path() + "/tmp") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
