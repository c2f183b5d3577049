// Values that describe a connection: its handle, state, send flags and results, lanes, identity and route
// (ConnectionInfo) and real-time status (ConnectionStatus). The Host hands them out; see host.hpp.
//
//   auto info = host.connection_info(conn);
//   if (info) std::cout << info->remote_fingerprint << " via " << info->remote_address.to_string();
//   auto st = host.status(conn);
//   if (st && st->rtt) std::cout << "rtt " << st->rtt->count() << " us";
//
// Thread-safety: plain values; copies may be used from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "peerlink/address.hpp"
#include "peerlink/end_reason.hpp"
#include "peerlink/identity.hpp"
#include "peerlink/peer_id.hpp"

namespace peerlink {

// A connection as the application names it. 0 is never a valid handle.
using ConnectionHandle = uint32_t;
inline constexpr ConnectionHandle kInvalidConnection = 0;

enum class ConnectionState : uint8_t {
  kConnecting,  // handshake in progress, or an incoming request awaiting accept
  kConnected,
  kClosing,  // closed by this side and still flushing (linger) or telling the peer
  kClosed,   // ended; ConnectionInfo::end_reason says why
};
const char* to_string(ConnectionState state);

// Send flags, combinable with |. Messages are reliable unless kUnreliable says otherwise.
namespace send_flags {
// Reliable (the default, no bit): delivered once, whole, in order with the other reliable messages of its
// lane, or the connection ends.
inline constexpr uint32_t kReliable = 0;
// May be lost; never duplicated; delivered whole or not at all; not ordered with respect to other
// messages. At most 64 KiB.
inline constexpr uint32_t kUnreliable = 1u << 0;
// Send at once instead of waiting up to the Nagle delay (5 ms) to coalesce with the next messages.
inline constexpr uint32_t kNoNagle = 1u << 1;
// With kUnreliable only (kInvalidFlags otherwise): if the message cannot leave right now (congestion
// window full, not yet connected), drop it and return kDropped instead of queueing it. Implies kNoNagle.
// For state updates that are useless late.
inline constexpr uint32_t kDropIfBlocked = 1u << 2;
inline constexpr uint32_t kAll = kUnreliable | kNoNagle | kDropIfBlocked;
}  // namespace send_flags

enum class SendResult : uint8_t {
  kOk,
  kDropped,          // a kDropIfBlocked message that could not leave now, or an empty unreliable one
  kLimitExceeded,    // the connection's send buffer is full: retry after some data is acknowledged
  kMessageTooLarge,  // above max_message_size (reliable) or 64 KiB (unreliable)
  kInvalidState,     // the connection is closing or closed
  kInvalidLane,      // no such lane (see Host::configure_lanes)
  kNoConnection,     // no such connection handle
  kInvalidFlags,     // unknown bits, or kDropIfBlocked without kUnreliable
};
const char* to_string(SendResult result);

// Lanes: independent ordered streams of reliable messages inside one connection, so a large transfer on one
// lane does not delay chat on another. Lane 0 always exists.
struct LaneConfig {
  int priority = 0;     // lower number = more urgent; strictly served first
  uint16_t weight = 1;  // bandwidth share among lanes of the same priority
};

// How the connection's datagrams travel.
enum class RouteType : uint8_t {
  kNone,             // not yet known (connecting)
  kDirectUdp,        // connect(Address) / listen(): a UDP socket straight to the peer's address
  kHost,             // ICE: a local interface address of each side
  kServerReflexive,  // ICE: through a NAT mapping learned from a STUN server
  kPeerReflexive,    // ICE: through a NAT mapping learned from the peer
  kRelay,            // ICE: through a TURN relay
};
const char* to_string(RouteType route);

struct ConnectionInfo {
  ConnectionHandle handle = kInvalidConnection;
  ConnectionState state = ConnectionState::kConnecting;
  bool incoming = false;  // the peer connected to us (through a listen socket)
  PeerId remote_peer;     // peer-to-peer connections: the peer's signaling name
  // Peer-to-peer connections: where its signaling last came from, when the plugin knows it more precisely
  // than remote_peer (the full JID of the XMPP resource that answered a bare JID); else remote_peer.
  PeerId remote_peer_exact;
  uint16_t virtual_port = 0;   // peer-to-peer connections: the listen_p2p() virtual port it is for
  uint32_t listen_socket = 0;  // the listen socket it came through; 0 for outgoing connections
  // The peer's static key: all zero until known. Known once the handshake has proven it
  // (remote_key_proven), and, for a peer-to-peer request, from the signaling before that (see
  // ConnectionEventKind::kIncomingRequest).
  PublicKey remote_key{};
  bool remote_key_proven = false;
  std::string remote_fingerprint;  // Identity::fingerprint_of(remote_key); empty until known
  // Where the datagrams go and come from: the peer's address as seen from here, and ours. Over ICE, those
  // of the selected candidate pair (a relayed route: the TURN server's relayed address for us, the peer's
  // relay or mapped address for it); "(none)" until a path is known.
  Address remote_address;
  Address local_address;
  RouteType route = RouteType::kNone;
  bool relayed = false;  // through a relay server: the peer does not learn our address, nor we its
  uint64_t user_data = 0;
  uint32_t end_reason = 0;  // EndReason or an application code; 0 until closed
  std::string end_debug;    // a human-readable explanation of end_reason
};

// Real-time status, GameNetworkingSockets' SteamNetConnectionRealTimeStatus_t in spirit.
struct ConnectionStatus {
  ConnectionState state = ConnectionState::kConnecting;
  // Smoothed round-trip time; nullopt until the first sample (an acknowledgement of a packet sent
  // connected). rtt_min and rtt_variance are 0 until then.
  std::optional<std::chrono::microseconds> rtt;
  std::chrono::microseconds rtt_min{0};
  std::chrono::microseconds rtt_variance{0};
  double loss_rate = 0;  // recent fraction of packets lost, 0–1
  double quality = 1;    // 1 - recent loss, 0–1
  double send_rate_bytes_per_second = 0;
  uint64_t congestion_window_bytes = 0;
  uint64_t bytes_in_flight = 0;
  size_t packet_size = 0;  // current largest datagram (grows with path MTU probing)
  uint64_t packets_sent = 0, packets_received = 0, packets_lost = 0, packets_retransmitted = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t packets_rejected_auth = 0;  // failed authentication: corrupt or forged
  uint64_t packets_duplicate = 0;      // replayed or duplicated
  uint64_t messages_sent = 0, messages_received = 0;
  uint64_t unreliable_dropped = 0;  // unreliable messages abandoned (a fragment lost, or kDropIfBlocked)
  uint64_t queued_bytes = 0;        // accepted by send() but not yet acknowledged, all lanes
  std::vector<uint64_t> lane_queued_bytes;
};

}  // namespace peerlink
