#include "filters/greylist/redis_store.h"

#include <charconv>
#include <vector>

#include "gateway/c/hiredis.h"
#include "gateway/util/ip_address.h"

namespace mailgate {
namespace {

// One reply, copied out of hiredis's tree.
struct RedisValue {
  int type = REDIS_REPLY_NIL;
  std::string text;  // STRING, STATUS, ERROR
  long long integer = 0;
  std::vector<RedisValue> elements;
};

RedisValue copied(const redisReply& reply) {
  RedisValue value;
  value.type = reply.type;
  value.integer = reply.integer;
  if (reply.str != nullptr) value.text.assign(reply.str, reply.len);
  for (std::size_t i = 0; i < reply.elements; ++i) value.elements.push_back(copied(*reply.element[i]));
  return value;
}

std::string command(std::initializer_list<std::string> words) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& word : words) {
    argv.push_back(word.data());
    lengths.push_back(word.size());
  }
  char* formatted = nullptr;
  int length = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (length < 0 || formatted == nullptr) return {};
  std::string out(formatted, static_cast<std::size_t>(length));
  redisFreeCommand(formatted);
  return out;
}

std::optional<int64_t> integerOf(const RedisValue& value) {
  if (value.type == REDIS_REPLY_INTEGER) return value.integer;
  if (value.type != REDIS_REPLY_STRING) return std::nullopt;
  int64_t number = 0;
  auto [end, error] = std::from_chars(value.text.data(), value.text.data() + value.text.size(), number);
  if (error != std::errc() || end != value.text.data() + value.text.size()) return std::nullopt;
  return number;
}

// One check's conversation with Redis. Lives on the loop; the stream's callbacks hold it until
// it finishes (then the stream is closed and no callback runs again).
struct Exchange : std::enable_shared_from_this<Exchange> {
  GreylistKeys keys;
  GreylistStore::Decide decide;
  GreylistStore::Done done;
  RedisReader reader{redisReaderCreate()};
  std::shared_ptr<StreamConnection> stream;
  std::vector<RedisValue> replies;
  std::size_t expected = 0;
  bool writing = false;  // the second round trip
  bool finished = false;
  std::optional<GreylistDecision> decision;

  void finish(std::expected<GreylistDecision, std::string> result) {
    if (finished) return;
    finished = true;
    auto stream_now = std::move(stream);
    if (stream_now) stream_now->close();
    auto callback = std::move(done);
    if (callback) callback(std::move(result));
  }

  void send(std::string bytes, std::size_t replies_wanted) {
    replies.clear();
    expected = replies_wanted;
    if (stream) stream->write(std::move(bytes));
  }

  void connected(std::string_view error) {
    if (!error.empty()) return finish(std::unexpected("cannot connect to redis: " + std::string(error)));
    send(command({"HMGET", keys.triplet, "first_seen", "last_seen", "passes"}) + command({"GET", keys.client}), 2);
  }

  void received(std::string_view bytes) {
    if (finished) return;
    // Finishing closes the stream, which drops the callback running this: stay alive until out.
    auto self = shared_from_this();
    if (redisReaderFeed(reader.get(), bytes.data(), bytes.size()) != REDIS_OK)
      return finish(std::unexpected(std::string("redis: unreadable reply")));
    while (replies.size() < expected) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK) return finish(std::unexpected(std::string("redis: unreadable reply")));
      if (raw == nullptr) return;  // more bytes to come
      RedisValue value = copied(*static_cast<redisReply*>(raw));
      freeReplyObject(raw);
      if (value.type == REDIS_REPLY_ERROR) return finish(std::unexpected("redis: " + value.text));
      replies.push_back(std::move(value));
    }
    if (!writing) return stateRead();
    finish(*decision);
  }

  void stateRead() {
    const RedisValue& fields = replies[0];
    std::optional<TripletState> triplet;
    if (fields.type == REDIS_REPLY_ARRAY && fields.elements.size() == 3) {
      auto first = integerOf(fields.elements[0]), last = integerOf(fields.elements[1]), passes = integerOf(fields.elements[2]);
      if (first && last && passes) triplet = TripletState{*first, *last, *passes};
    }
    int64_t client_passes = integerOf(replies[1]).value_or(0);
    decision = decide(triplet, client_passes);
    const TripletState& state = decision->triplet;
    std::string writes = command({"HSET", keys.triplet, "first_seen", std::to_string(state.first_seen), "last_seen",
                                  std::to_string(state.last_seen), "passes", std::to_string(state.passes)}) +
                         command({"EXPIRE", keys.triplet, std::to_string(std::max<int64_t>(1, decision->triplet_ttl))});
    std::size_t count = 2;
    if (decision->client_passed) {
      writes += command({"INCR", keys.client}) +
                command({"EXPIRE", keys.client, std::to_string(std::max<int64_t>(1, decision->client_ttl))});
      count += 2;
    }
    writing = true;
    send(std::move(writes), count);
  }
};

}  // namespace

std::expected<std::string, std::string> RedisStore::endpointOf(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) return std::unexpected("must read \"redis://ADDRESS:PORT\", e.g. \"redis://127.0.0.1:6379\"");
  std::string_view rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest, port = "6379";
  if (rest.starts_with("[")) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return std::unexpected("an unclosed '[' in the address");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return std::unexpected("expected ':' and a port after ']'");
      port = rest.substr(close + 2);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  auto address = IpAddress::parse(host);
  if (!address) return std::unexpected("\"" + std::string(host) + "\" is not an IP address (names are not looked up)");
  int number = 0;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (error != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535)
    return std::unexpected("\"" + std::string(port) + "\" is not a port");
  return (address->v4 ? address->text() : "[" + address->text() + "]") + ":" + std::to_string(number);
}

std::move_only_function<void()> RedisStore::apply(const StageInput& input, const GreylistKeys& keys, Decide decide,
                                                  Done done) const {
  if (input.network == nullptr) {
    done(std::unexpected(std::string("no network access here")));
    return [] {};
  }
  auto exchange = std::make_shared<Exchange>();
  exchange->keys = keys;
  exchange->decide = std::move(decide);
  exchange->done = std::move(done);
  StreamCallbacks callbacks;
  callbacks.connected = [exchange](std::string_view error) { exchange->connected(error); };
  callbacks.received = [exchange](std::string_view bytes) { exchange->received(bytes); };
  callbacks.closed = [exchange](std::string_view why) {
    exchange->finish(std::unexpected("redis closed the connection" + (why.empty() ? std::string() : ": " + std::string(why))));
  };
  exchange->stream = input.network->connect(endpoint_, std::move(callbacks), connect_timeout_ms);
  if (exchange->finished && exchange->stream) exchange->stream->close();
  std::weak_ptr<Exchange> weak = exchange;
  return [weak] {
    if (auto live = weak.lock()) {
      live->done = nullptr;
      live->finish(std::unexpected(std::string("abandoned")));
    }
  };
}

}  // namespace mailgate
