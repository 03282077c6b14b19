#include "gateway/relay/downstream_pool.h"

#include <algorithm>

namespace mailgate {

std::shared_ptr<Downstream> DownstreamPool::acquire(const DownstreamConfig& config, const std::string& helo) {
  std::erase_if(idle_, [](const auto& downstream) { return !downstream->reusable(); });
  std::string key = config.address->text() + " " + helo;
  // The most recently used connection is the least likely to have been closed by the server.
  for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
    if ((*it)->key() != key) continue;
    auto downstream = *it;
    idle_.erase(std::next(it).base());
    downstream->unpark();
    return downstream;
  }
  return Downstream::create(loop_, config, helo);
}

void DownstreamPool::release(std::shared_ptr<Downstream> downstream, const DownstreamConfig& config) {
  std::erase_if(idle_, [](const auto& idle) { return !idle->reusable(); });
  if (closed_ || !downstream->reusable() || config.idle_connections == 0) {
    downstream->close();
    return;
  }
  if (idle_.size() >= config.idle_connections) {
    idle_.front()->close();
    idle_.erase(idle_.begin());
  }
  downstream->park(config.idle_timeout);
  idle_.push_back(std::move(downstream));
}

void DownstreamPool::clear() {
  closed_ = true;
  for (auto& downstream : idle_) downstream->close();
  idle_.clear();
}

}  // namespace mailgate
