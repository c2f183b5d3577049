// The Host's signaling plugins: started with the Host and stopped with it, one per scheme, each given a
// sink of its own. A sink checks what its plugin hands in (the sender's scheme, the blob's size) and queues
// it, under a lock of its own, for the service thread, the only reader. Blobs to send go to the plugin of
// the peer's scheme, called with no Host lock held.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "peerlink/signaling.hpp"
#include "transport/host/ice_server_resolver.hpp"

namespace peerlink::host {

class SignalingPlugins {
 public:
  // What a plugin handed in: a blob from a peer, the news that a peer cannot be reached, or (resolved)
  // the ICE servers its signaling service offers.
  struct Inbound {
    enum Kind : uint8_t { kBlob, kUnreachable, kIceServers, kNetworkChanged } kind = kBlob;
    PeerId peer;   // kBlob: as the Host matches it; kUnreachable: the peer
    PeerId exact;  // kBlob: where it came from exactly
    std::vector<uint8_t> blob;
    std::string detail;  // kUnreachable, kNetworkChanged: why; kIceServers: servers left out
    std::string scheme;  // kIceServers, kNetworkChanged: whose
    IceConfig servers;   // kIceServers: numeric addresses
  };
  struct Counters {
    uint64_t received = 0;      // every blob delivered, good or bad
    uint64_t invalid = 0;       // empty or oversized (not queued)
    uint64_t wrong_scheme = 0;  // from a PeerId outside the plugin's scheme (not queued)
    uint64_t dropped = 0;       // beyond kMaxInbox queued (not queued)
  };
  static constexpr size_t kMaxInbox = 4096;

  // Starts every plugin (wake: called after something was queued, from the plugins' threads). A plugin
  // instance that already serves another Host fails with ErrorCode::kAlreadyExists (an Exception); a
  // plugin whose start() throws makes this throw the same. Either way the plugins started so far are
  // stopped first.
  SignalingPlugins(const std::vector<std::shared_ptr<SignalingPlugin>>& plugins, const PublicKey& local_key,
                   std::function<void()> wake);
  ~SignalingPlugins();  // stops every plugin (calls stop() once each, after the last send())
  SignalingPlugins(const SignalingPlugins&) = delete;
  SignalingPlugins& operator=(const SignalingPlugins&) = delete;

  bool empty() const { return plugins_.empty(); }
  bool serves(const PeerId& peer) const;
  std::string schemes() const;  // "xmpp lan", or "none"
  // One of the plugins names this Host so (SignalingPlugin::local_peer). Calls the plugins: no Host lock.
  bool is_local(const PeerId& peer) const;
  // Whether the plugin of the peer's scheme lets `key` be that peer's (SignalingPlugin::key_matches).
  bool key_matches(const PeerId& peer, const PublicKey& key) const;
  // PeerIds of the other plugins' schemes whose peers say they answer to alias (SignalingPlugin::find_alias).
  std::vector<PeerId> find_alias(const PeerId& alias) const;
  // To the plugin of the peer's scheme (none: dropped). Calls the plugin: no Host lock.
  void send(const PeerId& to, const std::vector<uint8_t>& blob);

  // Moves what arrived since the last call into out (service thread).
  void take_inbox(std::vector<Inbound>& out);
  Counters counters() const;

 private:
  class Sink;
  void push(Inbound in);
  void stop_all();

  std::function<void()> wake_;
  const PublicKey local_key_;
  std::vector<std::unique_ptr<Sink>> sinks_;  // one per plugin, alive until the plugins are stopped
  std::unordered_map<std::string, std::shared_ptr<SignalingPlugin>> plugins_;  // by scheme

  mutable std::mutex inbox_mutex_;  // guards inbox_ and counters_; plugins' threads deliver into them
  std::vector<Inbound> inbox_;
  Counters counters_;

  std::unique_ptr<IceServerResolver> resolver_;  // for offer_ice_servers(), until stop_all()
};

}  // namespace peerlink::host
