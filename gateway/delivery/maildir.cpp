#include "gateway/delivery/maildir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <utility>
#include <vector>

#include "gateway/util/file_descriptor.h"

namespace mailgate {

namespace {

// The spool is copied in pieces so that a 50 MiB message costs one chunk of memory here.
constexpr std::size_t copy_chunk = 64 * 1024;


// Removes a file that did not make it to its destination, so a failed delivery leaves nothing.
class RemoveUnlessKept {
 public:
  explicit RemoveUnlessKept(std::string path) : path_(std::move(path)) {}
  ~RemoveUnlessKept() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  RemoveUnlessKept(const RemoveUnlessKept&) = delete;
  RemoveUnlessKept& operator=(const RemoveUnlessKept&) = delete;

  void keep() { path_.clear(); }

 private:
  std::string path_;
};

std::string failure(std::string_view step, const std::string& path, int error) {
  return std::string(step) + " " + path + ": " + std::strerror(error);
}

// Like mkdir -p, mode 0700: the mail in there is nobody else's business.
int makeDirectories(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0) return 0;
  int error = errno;
  if (error == ENOENT) {
    std::size_t slash = path.find_last_of('/');
    std::size_t parent_end = slash == std::string::npos ? slash : path.find_last_not_of('/', slash);
    if (parent_end == std::string::npos) return error;  // no parent in the path to create
    if (int parent = makeDirectories(path.substr(0, parent_end + 1)); parent != 0) return parent;
    if (::mkdir(path.c_str(), 0700) == 0) return 0;
    error = errno;
  }
  struct stat status {};
  if (error == EEXIST && ::stat(path.c_str(), &status) == 0) return S_ISDIR(status.st_mode) ? 0 : ENOTDIR;
  return error;
}

// The Maildir spec: '/' and ':' in the host name would break the name, so they become \057 and \072.
std::string maildirHostname() {
  char buffer[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0 || buffer[0] == '\0') return "localhost";
  std::string host;
  for (const char* c = buffer; *c != '\0'; ++c) {
    if (*c == '/') host += "\\057";
    else if (*c == ':') host += "\\072";
    else host += *c;
  }
  return host;
}

// "<seconds>.M<microseconds>P<pid>Q<counter>.<host>": the counter keeps names from concurrent
// deliveries in this process apart, the pid those of other processes delivering into the same folder.
std::string uniqueName() {
  static const std::string host = maildirHostname();
  static std::atomic<uint64_t> counter{0};
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - seconds);
  return std::to_string(seconds.count()) + ".M" + std::to_string(micros.count()) + "P" +
         std::to_string(::getpid()) + "Q" + std::to_string(counter.fetch_add(1) + 1) + "." + host;
}

int writeAll(int fd, const char* data, std::size_t length) {
  while (length > 0) {
    ssize_t written = ::write(fd, data, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += written;
    length -= static_cast<std::size_t>(written);
  }
  return 0;
}

}  // namespace

std::expected<Maildir, std::string> Maildir::open(std::string path) {
  if (path.empty()) return std::unexpected(std::string("the Maildir path is empty"));
  for (const char* sub : {"", "/tmp", "/new", "/cur"}) {
    std::string folder = path + sub;
    if (int error = makeDirectories(folder); error != 0) {
      return std::unexpected(failure("creating the Maildir folder", folder, error));
    }
  }
  return Maildir(std::move(path));
}

std::expected<std::string, std::string> Maildir::deliver(std::string_view headers, const Spool& spool) const {
  // A non-owning pointer: the caller's spool outlives this call.
  return deliver(OutgoingMessage(std::string(headers), std::shared_ptr<const Spool>(std::shared_ptr<void>(), &spool), {}));
}

std::expected<std::string, std::string> Maildir::deliver(const OutgoingMessage& message) const {
  std::string name = uniqueName();
  std::string temporary = path_ + "/tmp/" + name;
  std::string final_path = path_ + "/new/" + name;

  FileDescriptor file(::open(temporary.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
  if (file.get() < 0) return std::unexpected(failure("creating", temporary, errno));
  RemoveUnlessKept cleanup(temporary);

  std::vector<char> chunk(copy_chunk);
  for (uint64_t offset = 0; offset < message.size();) {
    auto got = message.read(offset, chunk.data(), chunk.size());
    if (!got) return std::unexpected("reading the message for " + temporary + ": " + got.error());
    // Delivering a truncated message would be worse than a 4xx and a retry.
    if (*got == 0) return std::unexpected("reading the message for " + temporary + ": it ends early");
    if (int error = writeAll(file.get(), chunk.data(), *got); error != 0) {
      return std::unexpected(failure("writing", temporary, error));
    }
    offset += *got;
  }
  if (::fsync(file.get()) != 0) return std::unexpected(failure("syncing", temporary, errno));
  if (int error = file.close(); error != 0) return std::unexpected(failure("closing", temporary, error));

  if (::rename(temporary.c_str(), final_path.c_str()) != 0) {
    return std::unexpected(failure("moving the message into", final_path, errno));
  }
  cleanup.keep();
  // Without this the rename may not survive a crash, and the client would have heard 250 for mail
  // that is gone. On failure the file goes too: the client hears a 4xx and sends again, and a
  // copy left here would be delivered twice.
  RemoveUnlessKept undelivered(final_path);
  std::string new_folder = path_ + "/new";
  FileDescriptor directory(::open(new_folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory.get() < 0) return std::unexpected(failure("opening", new_folder, errno));
  if (::fsync(directory.get()) != 0) return std::unexpected(failure("syncing", new_folder, errno));
  undelivered.keep();
  return name;
}

}  // namespace mailgate
