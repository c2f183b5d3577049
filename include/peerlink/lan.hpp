// LAN beacon: peers on the same local network find each other and connect with no internet and no server.
// A SignalingPlugin (scheme "lan") and a discovery service at once. Link peerlink::lan.
//
//   peerlink::HostConfig config;
//   config.identity = *peerlink::Identity::load_or_create("/var/lib/mygame/identity.key");
//   peerlink::LanOptions lan;
//   lan.identity = config.identity;       // the beacon announces and signs with the Host's key
//   lan.service = "mygame";               // peers of other applications stay invisible
//   lan.display_name = "Alice's laptop";
//   auto beacon = std::make_shared<peerlink::LanBeacon>(lan);
//   config.signaling.push_back(beacon);
//   peerlink::Host host(config);          // starts announcing and looking
//   (void)host.listen_p2p();
//   for (const peerlink::LanPeer& peer : beacon->peers())
//     std::cout << peer.display_name << " " << peer.id.str() << "\n";   // "lan:pl1-abcd-..."
//   auto conn = host.connect(beacon->peers().front().id);
//
// Discovery is DNS-SD over multicast DNS (RFC 6762/6763: 224.0.0.251 and ff02::fb, port 5353, service
// "_<service>._udp.local"), spoken through avahi-daemon where it runs, else by the beacon's own responder
// and querier (LanOptions::responder). Every announcement carries the
// peer's identity key and is signed by it; with a network key it is also authenticated under that key, and
// peers without it are invisible. The signaling blobs of a connection travel by unicast UDP between the two
// peers, authenticated to both identity keys (and the network key): connect(PeerId) works on a LAN with no
// server, and ICE finds the path with host candidates alone. A PeerId "lan:<fingerprint>" names a key: the
// Host refuses a peer under it whose key is another. docs/LAN.md is the manual.
//
// Thread-safety: every method may be called from any thread. The beacon has a thread of its own (its
// sockets, timers and the netlink watch); events reach the application on its own thread through
// run_callbacks() or next_event(), or on the beacon's thread with CallbackThread::kService.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peerlink/address.hpp"
#include "peerlink/error.hpp"
#include "peerlink/host.hpp"
#include "peerlink/identity.hpp"
#include "peerlink/log.hpp"
#include "peerlink/signaling.hpp"

namespace peerlink {

// A peer seen on the LAN.
struct LanPeer {
  PeerId id;  // "lan:<fingerprint of key>": what Host::connect() takes
  PublicKey key{};
  std::string display_name;
  std::vector<PeerId> aliases;  // other PeerIds it says it answers to ("xmpp:bob@example.org"), unverified
  uint16_t port = 0;            // the UDP port its signaling datagrams go to
  // Where it was seen: one entry per interface of ours it was heard on.
  struct Link {
    std::string interface;  // "eth0"
    int interface_index = 0;
    std::vector<Address> addresses;  // as it announced them on that link (port 0; IPv6 link-local: scope id)
    std::chrono::steady_clock::time_point last_seen{};
  };
  std::vector<Link> links;
  std::chrono::steady_clock::time_point last_seen{};  // the newest of its links'
};

enum class LanEventKind : uint8_t {
  kFound,    // a new peer
  kUpdated,  // its name, addresses or links changed
  kLost,     // gone from every link: its goodbye, or its records expired (LanOptions::ttl_seconds)
};
const char* to_string(LanEventKind kind);

struct LanEvent {
  LanEventKind kind = LanEventKind::kFound;
  LanPeer peer;  // as it is after the event (as it was last, for kLost)
};

// Who speaks multicast DNS for the beacon.
enum class LanResponder : uint8_t {
  kAuto,   // avahi-daemon when it runs (reachable on the D-Bus system bus), else the beacon's own
  kOwn,    // the beacon's own responder and querier (sharing port 5353 with any other)
  kAvahi,  // avahi-daemon through libavahi-client; start() fails when it cannot be reached
};
const char* to_string(LanResponder responder);
// "auto", "own", "avahi" (what to_string gives); nullopt otherwise.
std::optional<LanResponder> parse_lan_responder(std::string_view text);

struct LanOptions {
  // The Host's identity (HostConfig::identity): required. The beacon signs its announcements and blobs with
  // it; the Host refuses to start a beacon whose identity is not its own.
  std::optional<Identity> identity;
  // The application's service: 1-15 letters, digits and hyphens ("_<service>._udp.local"). Only peers of the
  // same service see each other.
  std::string service = "peerlink";
  // What others see (at most 40 bytes of UTF-8). Empty: this machine's host name.
  std::string display_name;
  // Interfaces by name. Empty `interfaces`: every interface that is up and multicast-capable except
  // loopback, point-to-point links and the names of kDefaultExcludedInterfaces; otherwise exactly these
  // (when they are up). `exclude_interfaces` are never used. Interfaces that appear, go away or change
  // addresses while running are followed (netlink).
  std::vector<std::string> interfaces;
  std::vector<std::string> exclude_interfaces;
  bool ipv4 = true, ipv6 = true;
  // A secret shared by the group (any length from 16 bytes): only peers holding it see each other and can
  // exchange blobs. Empty: none.
  std::string network_key;
  // Other PeerIds this peer answers to ("xmpp:alice@example.org"), announced to the LAN (at most 4): a
  // Host whose connect to one of them finds it unreachable may come here instead, if this peer holds the
  // key it learned for it (HostConfig::signaling_fallback).
  std::vector<PeerId> aliases;
  // Every record's time to live, in seconds: a peer that vanishes without a goodbye is lost this soon. The
  // records are re-announced at 80% of it (with 120 s, once every 96 s per interface and address family).
  uint32_t ttl_seconds = 120;
  // The multicast DNS port: 5353 (the standard); tests may choose another (own responder only).
  uint16_t mdns_port = 5353;
  // Through avahi-daemon, avahi's configuration decides the interfaces it announces on; peers are taken
  // from the interfaces chosen above only. Its records carry no signed addresses (docs/LAN.md).
  LanResponder responder = LanResponder::kAuto;
  // Events: on_event runs on the application's thread from run_callbacks() (kApplication, the default) or
  // on the beacon's thread as they happen (kService: keep it short, do not call stop()). Without on_event,
  // next_event() returns them.
  CallbackThread callback_thread = CallbackThread::kApplication;
  std::function<void(const LanEvent& event)> on_event;
  // Where the beacon logs (interfaces followed, hostile input): stderr when unset.
  LogSink log_sink;
  LogLevel log_level = LogLevel::kWarning;

  // Fails (kInvalidConfig) saying what is wrong.
  Result<void> validate() const;
};

// Interface names the default selection leaves out (containers', virtual machines' bridges and tunnels):
// a prefix each.
extern const char* const kDefaultExcludedInterfaces[6];  // docker, veth, virbr, tun, wg, br-

struct LanCounters {
  // Discovery (multicast DNS).
  uint64_t mdns_datagrams = 0;
  uint64_t malformed = 0;          // not a DNS message: dropped
  uint64_t off_link = 0;           // TTL / hop limit not 255 (RFC 6762 §11): dropped
  uint64_t bad_signature = 0;      // forged, unsigned or altered records: ignored
  uint64_t wrong_network_key = 0;  // strangers, or a group we are not in: ignored
  uint64_t bad_records = 0;        // our service's records, badly formed: ignored
  uint64_t replayed = 0;           // records older than ones seen from the same key: ignored
  uint64_t rate_limited = 0;       // datagrams over a source's budget: dropped
  uint64_t peers_refused = 0;      // beyond 1024 peers
  uint64_t queries_answered = 0;
  uint64_t multicast_sent = 0;
  // Rendezvous (signaling blobs by unicast UDP).
  uint64_t blobs_sent = 0, blobs_received = 0;
  uint64_t blobs_rejected = 0;       // malformed, not for us, or failing authentication: dropped
  uint64_t blobs_replayed = 0;       // a copy or an old one: dropped
  uint64_t blobs_waiting = 0;        // sent before the peer was discovered, held for it
  uint64_t unreachable_reports = 0;  // peers reported unreachable to the Host
  uint64_t interface_changes = 0;    // interfaces taken up or let go while running
};

class LanBeacon final : public SignalingPlugin {
 public:
  // Throws peerlink::Exception (kInvalidConfig) if the options cannot work. Nothing touches the network
  // before the Host starts the plugin.
  explicit LanBeacon(LanOptions options);
  ~LanBeacon() override;  // stops (as stop()) if the Host has not
  LanBeacon(const LanBeacon&) = delete;
  LanBeacon& operator=(const LanBeacon&) = delete;

  // The peers seen now, ordered by display name.
  std::vector<LanPeer> peers() const;
  std::optional<LanPeer> peer(const PeerId& id) const;
  // The interfaces served now ("eth0", ...).
  std::vector<std::string> interfaces() const;
  // Who speaks multicast DNS (kOwn or kAvahi once started; kAuto before).
  LanResponder responder() const;
  LanCounters counters() const;

  // kApplication: delivers the queued events to on_event on this thread; returns how many.
  size_t run_callbacks();
  // Without on_event: the next event, waiting up to timeout; false if none came. (With on_event set, events
  // go to it and this returns false.) At most 4096 events wait; older ones are dropped.
  bool next_event(LanEvent& event, std::chrono::milliseconds timeout);
  // Blocks until an event is queued or the timeout passes; true if there is one.
  bool wait(std::chrono::milliseconds timeout);

  // --- SignalingPlugin ---
  std::string scheme() const override { return "lan"; }
  PeerId local_peer() const override;  // "lan:<own fingerprint>"
  bool key_matches(const PeerId& peer, const PublicKey& key) const override;
  // The peers seen now that announce `alias` among their aliases (LanOptions::aliases).
  std::vector<PeerId> find_alias(const PeerId& alias) const override;
  // Opens the sockets (throws peerlink::Exception kSystem when it cannot, kInvalidConfig when the
  // identity is not the Host's) and starts the beacon's thread.
  void start(SignalingSink& sink) override;
  void send(const PeerId& to, const void* blob, size_t size) override;
  void stop() override;

  class Impl;  // opaque: the library's own

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace peerlink
