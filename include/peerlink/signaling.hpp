// Signaling: how two Hosts that do not know each other's address find each other.
//
// A peer-to-peer connection (Host::connect(PeerId)) starts with a short exchange of small opaque blobs (the
// peers' keys, ICE credentials and candidate addresses) through a *signaling plugin*: an XMPP account, LAN
// multicast, a web service, anything that can carry a few hundred bytes to a named peer. Then ICE finds a
// path (direct through NAT, or through a TURN relay) and the encrypted connection runs over it.
//
// A plugin implements SignalingPlugin and is given to the Host in HostConfig::signaling. The Host picks the
// plugin by the scheme of the PeerId ("xmpp:alice@example.org/laptop" goes to the plugin whose scheme() is
// "xmpp"). docs/SIGNALING.md is the tutorial; examples/custom_signaling is a complete plugin.
//
// The contract, in short:
//   - Blobs are opaque and at most kMaxSignalingBlob bytes. Carry them byte for byte (base64 them if the
//     transport is text).
//   - Delivery is best effort. The Host tolerates loss, duplication, reordering and delay: it retransmits
//     and a connection setup needs only a few blobs per side. A plugin need not be reliable, but it must not
//     alter a blob. Signaling is used for the whole life of a connection, not only its setup: an ICE
//     restart (a path lost) sends new blobs.
//   - The PeerId given to SignalingSink::deliver() must name the sender as the plugin's transport
//     authenticated it (the JID the XMPP server vouches for, say), in the plugin's own scheme (the Host
//     refuses and counts any other): the Host binds the key inside the blob to that name, and the encrypted
//     handshake then proves the peer holds the key.
//   - send() is called on the Host's service thread and must not block: queue the blob and return.
//   - The sink may be called from any thread, but never while holding a lock that send() or stop() also
//     takes: the Host may be calling them at that moment.
//   - When the plugin knows a peer cannot be reached (no such account, offline, refused), it says so with
//     SignalingSink::peer_unreachable(): connections to that peer then end at once with
//     EndReason::kMiscSignalingUnreachable instead of waiting for the connect timeout.
//   - One plugin instance serves one Host: a second Host given the same instance fails to start.
//   - A plugin whose names stand for keys (the LAN beacon's "lan:<fingerprint>") says so with key_matches():
//     the Host then refuses a peer under such a name whose key is another.
//   - When a peer's own plugin reports it unreachable, the Host may go on through another plugin that knows
//     a peer answering to that PeerId (find_alias()), but only to the key learned for the PeerId earlier
//     (HostConfig::known_keys, signaling_fallback): a LAN peer can stand in for an XMPP JID when the XMPP
//     server is down, never for a key it does not hold.
//   - A plugin that watches the network (interfaces coming and going) tells the Host with
//     SignalingSink::network_changed(): its connected peer-to-peer connections look for a new path at once
//     instead of after a silence.
// A test kit for plugins is installed with the headers: peerlink/testkit/in_process_signaling.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "peerlink/ice.hpp"
#include "peerlink/identity.hpp"
#include "peerlink/peer_id.hpp"

namespace peerlink {

// Largest blob the Host sends or accepts (it fits one UDP datagram and one small XMPP stanza).
inline constexpr size_t kMaxSignalingBlob = 1200;

// What a plugin hands received blobs to. Given to SignalingPlugin::start(), valid until stop() returns.
// Thread-safe: call it from any thread. Each call copies what it needs and returns quickly (it never waits
// for the network or for the application).
class SignalingSink {
 public:
  virtual ~SignalingSink() = default;
  // A blob arrived from `from`, the sender as the plugin's transport authenticated it. Blobs that are empty,
  // larger than kMaxSignalingBlob or malformed are dropped and counted (HostCounters::signaling_invalid).
  void deliver(const PeerId& from, const void* blob, size_t size) { deliver(from, blob, size, from); }
  // The same, when the plugin knows the sender more precisely than the name the Host should match it by:
  // `from` is the peer as the application addresses it (an XMPP bare JID it connected to), `exact` where
  // the blob came from (the full JID of the resource that sent it), shown in
  // ConnectionInfo::remote_peer_exact. Both in the plugin's scheme.
  virtual void deliver(const PeerId& from, const void* blob, size_t size, const PeerId& exact) = 0;
  // Blobs to `peer` cannot be delivered (unknown, offline, refused by the server, a name the transport
  // cannot carry, ...). Connections being set up with that peer end with
  // EndReason::kMiscSignalingUnreachable; `detail` becomes their debug text. `peer` must be the PeerId
  // send() was given (byte for byte), which is the one the application passed to connect().
  virtual void peer_unreachable(const PeerId& peer, const std::string& detail) = 0;
  // STUN and TURN servers the signaling service offers, with their credentials (XMPP's XEP-0215: TURN
  // credentials that expire, refreshed by offering again): from then on, connections and ICE restarts use
  // them together with HostConfig::ice's (and Host::set_ice_servers()'s). Each call replaces what this
  // plugin offered before; empty lists withdraw it. Names are resolved by the Host in the background, not
  // in this call; servers that are invalid or do not resolve are left out and logged.
  virtual void offer_ice_servers(const std::vector<StunServer>& stun,
                                 const std::vector<TurnServer>& turn) = 0;
  // The Host's own public key (HostConfig::identity): a plugin that announces a key of its own (the LAN
  // beacon signs its announcements) checks in start() that it is this one.
  virtual const PublicKey& local_key() const = 0;
  // The machine's network changed (an interface came or went, an address changed): every connected
  // peer-to-peer connection restarts ICE now (new candidates through the signaling), so one whose path
  // went away, or that could use a new one, does not wait for 1.5 s of silence. `detail` is logged.
  virtual void network_changed(const std::string& detail) = 0;
};

class SignalingPlugin {
 public:
  virtual ~SignalingPlugin() = default;

  // The scheme of the PeerIds this plugin serves ("xmpp", "lan", "myapp"). Must not change.
  virtual std::string scheme() const = 0;
  // Called once, by the Host's constructor on the application's thread, before any send(). The plugin keeps
  // the sink and may call it from any thread until stop() returns. A plugin instance serves one Host.
  // It must not wait for the network (the Host's constructor waits for it): start connecting on the
  // plugin's own thread and return; until connected, queue what send() gives, or report peers unreachable.
  // It may throw (say, a config the plugin cannot use): the Host's constructor then stops the plugins
  // already started and throws the same exception; stop() is not called on the plugin that threw.
  virtual void start(SignalingSink& sink) = 0;
  // This Host's own name in this plugin's scheme, as peers reach it (the XMPP plugin's full JID once logged
  // in, say), or an empty PeerId while unknown (the default). Host::connect() refuses it
  // (ErrorCode::kSelf) instead of waiting for a connection to itself to time out. Called from any thread.
  virtual PeerId local_peer() const { return {}; }
  // Whether `key` may be the key of `peer`. A plugin whose names are bound to keys (the LAN's
  // "lan:<key fingerprint>") returns false for any other key; the Host then, before any handshake, ends
  // its connection to such a peer (EndReason::kRemoteKeyMismatch) and rejects a request from it unseen (the
  // requester's connection ends with kRemoteRejected, saying why). The default
  // (names not bound to keys) is true. Called on the Host's service thread with the Host's lock held: a
  // pure function of its arguments, it must not block or call the Host.
  virtual bool key_matches(const PeerId& peer, const PublicKey& key) const {
    (void)peer;
    (void)key;
    return true;
  }
  // The PeerIds of this plugin's scheme of the peers that say they also answer to `alias`, a PeerId of
  // another scheme (the LAN beacon's peers announce their XMPP JIDs); none by default. What a peer says of
  // itself is not proof: the Host uses the answer only to reach a peer whose key it learned under `alias`
  // before, and only the one holding that key (HostConfig::signaling_fallback). Called on the Host's
  // service thread with the Host's lock held: it must not block or call the Host.
  virtual std::vector<PeerId> find_alias(const PeerId& alias) const {
    (void)alias;
    return {};
  }
  // Sends a blob to a peer, best effort. Called on the Host's service thread: must not block (queue the work
  // for the plugin's own thread or socket and return). The bytes are valid only during the call.
  virtual void send(const PeerId& to, const void* blob, size_t size) = 0;
  // Called once, by the Host's destructor, after the last send(). When it returns the plugin must no longer
  // call the sink (join or detach its threads first).
  virtual void stop() = 0;
};

}  // namespace peerlink
