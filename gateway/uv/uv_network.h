#pragma once
// NetworkAccess on one event loop, for one session: streams over unix sockets or TCP to the
// services stages talk to (clamd). The session owns it; when the session ends, closeAll() closes
// every stream still open, and none of their callbacks runs again.

#include <uv.h>

#include <memory>
#include <vector>

#include "gateway/pipeline/network.h"

namespace mailgate {

class UvNetwork final : public NetworkAccess {
 public:
  explicit UvNetwork(uv_loop_t* loop) : loop_(loop) {}
  ~UvNetwork() override { closeAll(); }
  UvNetwork(const UvNetwork&) = delete;
  UvNetwork& operator=(const UvNetwork&) = delete;

  std::shared_ptr<StreamConnection> connect(std::string_view endpoint, StreamCallbacks callbacks,
                                            uint64_t connect_timeout_ms) override;
  void closeAll();

 private:
  uv_loop_t* loop_;
  std::vector<std::weak_ptr<StreamConnection>> streams_;
};

}  // namespace mailgate
