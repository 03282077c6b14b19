#include "gateway/uv/uv_network.h"

#include <charconv>
#include <deque>
#include <string>

#include "gateway/uv/uv_util.h"

namespace mailgate {
namespace {

constexpr std::size_t read_buffer_octets = 16 * 1024;

// One stream: a uv_pipe_t or uv_tcp_t with its connect timer. It owns itself (self_) until both
// handles are closed, so libuv's callbacks always find it; the shared_ptr handed to the stage
// only says whether the stage still wants it.
class UvStream final : public StreamConnection, public std::enable_shared_from_this<UvStream> {
 public:
  static std::shared_ptr<UvStream> open(uv_loop_t* loop, std::string_view endpoint, StreamCallbacks callbacks,
                                        uint64_t connect_timeout_ms) {
    std::shared_ptr<UvStream> stream(new UvStream(loop, std::move(callbacks)));
    stream->self_ = stream;
    stream->start(endpoint, connect_timeout_ms);
    return stream;
  }

  void write(std::string bytes, std::move_only_function<void()> written) override {
    if (closed_ || !write_failure_.empty()) return;
    auto request = std::make_unique<Write>();
    request->bytes = std::move(bytes);
    request->written = std::move(written);
    request->owner = this;
    request->request.data = request.get();
    uv_buf_t buffer = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
    int status = uv_write(&request->request, streamHandle(), &buffer, 1, [](uv_write_t* write, int result) {
      std::unique_ptr<Write> owned(static_cast<Write*>(write->data));
      auto* self = owned->owner;
      auto keep = self->self_;
      if (self->closed_) return;
      if (result != 0) {
        self->writeFailed(result);
        return;
      }
      if (owned->written) owned->written();
    });
    if (status != 0) {
      writeFailed(status);
      return;
    }
    request.release();
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    callbacks_ = {};
    closeHandles();
  }

 private:
  struct Write {
    uv_write_t request;
    std::string bytes;
    std::move_only_function<void()> written;
    UvStream* owner = nullptr;
  };

  UvStream(uv_loop_t* loop, StreamCallbacks callbacks) : loop_(loop), callbacks_(std::move(callbacks)) {}

  uv_stream_t* streamHandle() { return unix_ ? reinterpret_cast<uv_stream_t*>(&pipe_) : reinterpret_cast<uv_stream_t*>(&tcp_); }

  void start(std::string_view endpoint, uint64_t connect_timeout_ms) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    ++open_handles_;
    connect_.data = this;
    unix_ = endpoint.starts_with('/');
    if (unix_) {
      uv_pipe_init(loop_, &pipe_, 0);
      pipe_.data = this;
      ++open_handles_;
      uv_pipe_connect(&connect_, &pipe_, std::string(endpoint).c_str(), onConnect);
    } else {
      uv_tcp_init(loop_, &tcp_);
      tcp_.data = this;
      ++open_handles_;
      sockaddr_storage address{};
      if (!parseEndpoint(endpoint, address)) {
        failLater("not a socket path or IP:port: " + std::string(endpoint));
        return;
      }
      int status = uv_tcp_connect(&connect_, &tcp_, reinterpret_cast<const sockaddr*>(&address), onConnect);
      if (status != 0) {
        failLater(std::string("connect: ") + uv_strerror(status));
        return;
      }
    }
    uv_timer_start(&timer_, [](uv_timer_t* timer) { static_cast<UvStream*>(timer->data)->fail("connect timed out"); },
                   connect_timeout_ms, 0);
  }

  static bool parseEndpoint(std::string_view endpoint, sockaddr_storage& address) {
    std::size_t colon = endpoint.rfind(':');
    if (colon == std::string_view::npos) return false;
    std::string_view host = endpoint.substr(0, colon);
    if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
    uint16_t port = 0;
    std::string_view digits = endpoint.substr(colon + 1);
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (error != std::errc() || end != digits.data() + digits.size() || port == 0) return false;
    return socketAddress(std::string(host), port, address);
  }

  static void onConnect(uv_connect_t* request, int status) {
    auto* self = static_cast<UvStream*>(request->data);
    auto keep = self->self_;
    if (self->closed_) return;
    uv_timer_stop(&self->timer_);
    if (status != 0) {
      self->fail(std::string("connect: ") + uv_strerror(status));
      return;
    }
    self->connected_ = true;
    uv_read_start(
        self->streamHandle(),
        [](uv_handle_t* handle, size_t, uv_buf_t* buffer) {
          auto* stream = static_cast<UvStream*>(handle->data);
          stream->read_buffer_.resize(read_buffer_octets);
          *buffer = uv_buf_init(stream->read_buffer_.data(), static_cast<unsigned>(stream->read_buffer_.size()));
        },
        [](uv_stream_t* handle, ssize_t nread, const uv_buf_t* buffer) {
          auto* stream = static_cast<UvStream*>(handle->data);
          auto keep = stream->self_;
          if (stream->closed_ || nread == 0) return;
          if (nread < 0) {
            std::string why = nread == UV_EOF ? "closed by peer" : std::string("read: ") + uv_strerror(static_cast<int>(nread));
            if (!stream->write_failure_.empty()) why += " (" + stream->write_failure_ + ")";
            stream->fail(why);
            return;
          }
          if (stream->callbacks_.received) stream->callbacks_.received(std::string_view(buffer->base, static_cast<std::size_t>(nread)));
        });
    if (auto connected = std::move(self->callbacks_.connected)) connected("");
  }

  // A peer that stops reading and closes may have answered first (clamd's "INSTREAM size limit
  // exceeded. ERROR" before it closes): its answer is still to be read, so a broken pipe only
  // stops the writing, and the stream ends when the reading does. Other write errors end it now.
  void writeFailed(int status) {
    std::string why = std::string("write: ") + uv_strerror(status);
    if (status != UV_EPIPE && status != UV_ECONNRESET) {
      fail(why);
      return;
    }
    if (write_failure_.empty()) write_failure_ = std::move(why);
  }

  // Reported on the next turn of the loop, so that connect() never calls back before it returns.
  void failLater(std::string why) {
    pending_failure_ = std::move(why);
    uv_timer_start(&timer_, [](uv_timer_t* timer) {
      auto* self = static_cast<UvStream*>(timer->data);
      self->fail(self->pending_failure_);
    }, 0, 0);
  }

  void fail(std::string why) {
    if (closed_) return;
    auto keep = self_;
    closed_ = true;
    StreamCallbacks callbacks = std::move(callbacks_);
    closeHandles();
    if (!connected_ && callbacks.connected) callbacks.connected(why);
    else if (callbacks.closed) callbacks.closed(why);
  }

  void closeHandles() {
    if (handles_closing_) return;
    handles_closing_ = true;
    auto on_close = [](uv_handle_t* handle) {
      auto* self = static_cast<UvStream*>(handle->data);
      if (--self->open_handles_ == 0) self->self_.reset();
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
    if (unix_) closeHandle(reinterpret_cast<uv_handle_t*>(&pipe_), on_close);
    else closeHandle(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  }

  uv_loop_t* loop_;
  StreamCallbacks callbacks_;
  std::shared_ptr<UvStream> self_;
  bool unix_ = false;
  uv_pipe_t pipe_{};
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_connect_t connect_{};
  int open_handles_ = 0;
  bool connected_ = false;
  bool closed_ = false;
  bool handles_closing_ = false;
  std::string pending_failure_;
  std::string write_failure_;  // set once the peer stopped reading: later writes are dropped
  std::string read_buffer_;
};

}  // namespace

std::shared_ptr<StreamConnection> UvNetwork::connect(std::string_view endpoint, StreamCallbacks callbacks,
                                                     uint64_t connect_timeout_ms) {
  std::erase_if(streams_, [](const auto& stream) { return stream.expired(); });
  auto stream = UvStream::open(loop_, endpoint, std::move(callbacks), connect_timeout_ms);
  streams_.push_back(stream);
  return stream;
}

void UvNetwork::closeAll() {
  for (auto& weak : streams_)
    if (auto stream = weak.lock()) stream->close();
  streams_.clear();
}

}  // namespace mailgate
