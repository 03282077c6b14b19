#include "gateway/relay/downstream_pool.h"

#include <algorithm>

namespace mailgate {

std::shared_ptr<Downstream> DownstreamPool::acquire(const DownstreamConfig& config, const std::string& helo) {
  std::erase_if(idle_, [](const auto& downstream) { return !downstream->reusable(); });
  std::string key = Downstream::keyFor(config, helo);
  // The most recently used connection is the least likely to have been closed by the server.
  for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
    if ((*it)->key() != key) continue;
    auto downstream = *it;
    idle_.erase(std::next(it).base());
    downstream->unpark();
    return downstream;
  }
  return Downstream::create(loop_, config, helo, clientTls(config));
}

std::shared_ptr<ClientTls> DownstreamPool::clientTls(const DownstreamConfig& config) {
  if (config.tls == DownstreamTls::None) return nullptr;
  // One context per worker, kept while the CA file stays the same: its sessions are what the
  // next connection resumes (a reload that changes the CA file starts afresh).
  if (!client_tls_ || client_tls_->caFile() != config.tls_ca_file) {
    auto made = ClientTls::make(config.tls_ca_file);
    client_tls_ = made ? std::move(*made) : nullptr;  // null: Downstream reports TLS unavailable
  }
  return client_tls_;
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
