#include "transport/host/signaling_plugins.hpp"

#include <unordered_set>

#include "peerlink/error.hpp"

namespace peerlink::host {
namespace {

// Plugin instances serving a Host now, process-wide: one instance serves one Host (its sink is that
// Host's), and starting it twice would mix two Hosts' blobs. Never destroyed, so that a Host living in a
// static object may still use it at exit.
struct PluginsInUse {
  std::mutex mutex;
  std::unordered_set<const SignalingPlugin*> plugins;
};
PluginsInUse& in_use() {
  static PluginsInUse* registry = new PluginsInUse;
  return *registry;
}

// Takes a plugin instance for this Host; false if another Host has it.
bool claim(const SignalingPlugin* plugin) {
  std::lock_guard<std::mutex> lock(in_use().mutex);
  return in_use().plugins.insert(plugin).second;
}

void release(const SignalingPlugin* plugin) {
  std::lock_guard<std::mutex> lock(in_use().mutex);
  in_use().plugins.erase(plugin);
}

}  // namespace

class SignalingPlugins::Sink final : public SignalingSink {
 public:
  Sink(SignalingPlugins& owner, std::string scheme) : owner_(owner), scheme_(std::move(scheme)) {}

  void deliver(const PeerId& from, const void* blob, size_t size, const PeerId& exact) override {
    const bool bad_size = size == 0 || size > kMaxSignalingBlob || !blob;
    // A plugin speaks only for peers of its own scheme.
    const bool foreign = from.scheme() != scheme_ || exact.scheme() != scheme_;
    if (bad_size || foreign) {
      std::lock_guard<std::mutex> lock(owner_.inbox_mutex_);
      ++owner_.counters_.received;
      ++(foreign ? owner_.counters_.wrong_scheme : owner_.counters_.invalid);
      return;
    }
    Inbound in;
    in.peer = from;
    in.exact = exact;
    in.blob.assign(static_cast<const uint8_t*>(blob), static_cast<const uint8_t*>(blob) + size);
    owner_.push(std::move(in));
  }

  void peer_unreachable(const PeerId& peer, const std::string& detail) override {
    if (peer.scheme() != scheme_) return;  // not a peer this plugin was asked to reach
    Inbound in;
    in.kind = Inbound::kUnreachable;
    in.peer = peer;
    in.detail = detail;
    owner_.push(std::move(in));
  }

  void offer_ice_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn) override {
    IceConfig servers;
    servers.stun_servers = stun;
    servers.turn_servers = turn;
    owner_.resolver_->offer(scheme_, std::move(servers));
  }

  const PublicKey& local_key() const override { return owner_.local_key_; }

  void network_changed(const std::string& detail) override {
    Inbound in;
    in.kind = Inbound::kNetworkChanged;
    in.scheme = scheme_;
    in.detail = detail;
    owner_.push(std::move(in));
  }

 private:
  SignalingPlugins& owner_;
  const std::string scheme_;
};

SignalingPlugins::SignalingPlugins(const std::vector<std::shared_ptr<SignalingPlugin>>& plugins,
                                   const PublicKey& local_key, std::function<void()> wake)
    : wake_(std::move(wake)), local_key_(local_key) {
  resolver_ = std::make_unique<IceServerResolver>(
      [this](const std::string& scheme, const IceConfig& servers, const std::string& problems) {
        Inbound in;
        in.kind = Inbound::kIceServers;
        in.scheme = scheme;
        in.servers = servers;
        in.detail = problems;
        push(std::move(in));
      });
  for (const auto& plugin : plugins) {
    if (!claim(plugin.get())) {
      stop_all();
      throw Exception(
          Error{ErrorCode::kAlreadyExists, "signaling: the plugin for scheme '" + plugin->scheme() +
                                               "' already serves another Host (one instance serves "
                                               "one Host)"});
    }
    const std::string scheme = plugin->scheme();
    sinks_.push_back(std::make_unique<Sink>(*this, scheme));
    try {
      plugin->start(*sinks_.back());
    } catch (...) {
      release(plugin.get());
      stop_all();
      throw;
    }
    plugins_[scheme] = plugin;
  }
}

SignalingPlugins::~SignalingPlugins() {
  stop_all();
}

void SignalingPlugins::stop_all() {
  // Plugins first: until a plugin's stop() returns, its thread may still offer servers to the resolver.
  for (auto& [scheme, plugin] : plugins_) {
    plugin->stop();
    release(plugin.get());
  }
  plugins_.clear();
  resolver_.reset();  // nothing more from it
  sinks_.clear();
}

bool SignalingPlugins::serves(const PeerId& peer) const {
  return plugins_.count(std::string(peer.scheme())) != 0;
}

bool SignalingPlugins::key_matches(const PeerId& peer, const PublicKey& key) const {
  auto it = plugins_.find(std::string(peer.scheme()));
  return it == plugins_.end() || it->second->key_matches(peer, key);
}

std::vector<PeerId> SignalingPlugins::find_alias(const PeerId& alias) const {
  std::vector<PeerId> out;
  for (const auto& [scheme, plugin] : plugins_) {
    if (scheme == alias.scheme()) continue;
    for (PeerId& found : plugin->find_alias(alias))
      if (found.scheme() == scheme) out.push_back(std::move(found));
  }
  return out;
}

std::string SignalingPlugins::schemes() const {
  std::string out;
  for (const auto& [scheme, plugin] : plugins_)
    out += (out.empty() ? "" : " ") + scheme;
  return out.empty() ? "none" : out;
}

bool SignalingPlugins::is_local(const PeerId& peer) const {
  auto it = plugins_.find(std::string(peer.scheme()));
  return it != plugins_.end() && it->second->local_peer() == peer;
}

void SignalingPlugins::send(const PeerId& to, const std::vector<uint8_t>& blob) {
  auto it = plugins_.find(std::string(to.scheme()));
  if (it != plugins_.end()) it->second->send(to, blob.data(), blob.size());
}

void SignalingPlugins::push(Inbound in) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    if (in.kind == Inbound::kBlob) ++counters_.received;
    if (inbox_.size() >= kMaxInbox &&
        in.kind != Inbound::kIceServers) {  // a flood the Host cannot keep up with
      if (in.kind == Inbound::kBlob) ++counters_.dropped;
      return;
    }
    inbox_.push_back(std::move(in));
  }
  wake_();
}

void SignalingPlugins::take_inbox(std::vector<Inbound>& out) {
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  out.swap(inbox_);
}

SignalingPlugins::Counters SignalingPlugins::counters() const {
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  return counters_;
}

}  // namespace peerlink::host
