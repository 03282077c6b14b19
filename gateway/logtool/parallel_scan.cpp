#include "gateway/logtool/parallel_scan.h"

#include <cstring>
#include <deque>
#include <future>
#include <thread>
#include <vector>

namespace mailgate::logtool {
namespace {

// The lines of a chunk, each ended by '\n', with RecordReader's padding after the last.
using Chunk = std::vector<char>;

Selection select(const Chunk& chunk, std::size_t size, const LogOptions& options) {
  Selection selection;
  Selector selector(options);
  const char* data = chunk.data();
  std::size_t begin = 0;
  while (begin < size) {
    const char* newline = static_cast<const char*>(std::memchr(data + begin, '\n', size - begin));
    std::size_t end = static_cast<std::size_t>(newline - data);
    selector.line(std::string_view(data + begin, end - begin), selection);
    begin = end + 1;
  }
  return selection;
}

}  // namespace

std::expected<void, std::string> scanInParallel(LineReader& lines, const LogOptions& options, bool keep_last_line,
                                                const std::function<void(Selection&&)>& take) {
  // One chunk per core being selected and one more being cut: the cores never wait for the reader.
  const std::size_t in_flight = std::max(1u, std::thread::hardware_concurrency()) + 1;
  std::deque<std::future<Selection>> pending;
  std::size_t oversized_before = lines.oversized();
  std::expected<void, std::string> status;
  bool at_end = false;
  while (!at_end) {
    auto chunk = std::make_shared<Chunk>();
    chunk->reserve(chunk_octets + 64 * 1024);
    while (chunk->size() < chunk_octets) {
      auto next = lines.next();
      if (!next) {
        status = std::unexpected(next.error());
        at_end = true;
        break;
      }
      std::optional<std::string_view> line = *next;
      if (!line) {
        at_end = true;
        if (!keep_last_line) line = lines.unterminated();
        if (!line) break;
      }
      chunk->insert(chunk->end(), line->begin(), line->end());
      chunk->push_back('\n');
    }
    if (chunk->empty()) break;
    std::size_t size = chunk->size();
    chunk->resize(size + RecordReader::padding_octets, ' ');
    pending.push_back(std::async(std::launch::async, [chunk, size, &options] { return select(*chunk, size, options); }));
    while (pending.size() >= in_flight || (at_end && !pending.empty())) {
      take(pending.front().get());
      pending.pop_front();
    }
  }
  while (!pending.empty()) {
    take(pending.front().get());
    pending.pop_front();
  }
  if (std::size_t oversized = lines.oversized() - oversized_before; oversized > 0) {
    Selection counted;
    counted.malformed = oversized;
    take(std::move(counted));
  }
  return status;
}

}  // namespace mailgate::logtool
