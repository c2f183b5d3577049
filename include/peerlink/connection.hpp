// Values that describe a connection: its handle, state, send flags and results, lanes, identity and route
// (ConnectionInfo) and real-time status (ConnectionStatus). The Host hands them out; see host.hpp.
//
//   auto info = host.connection_info(conn);
//   if (info) std::cout << info->remote_fingerprint << " via " << info->remote_address.to_string();
//   auto st = host.status(conn);
//   if (st) std::cout << "rtt " << st->rtt.count() << " us, loss " << st->loss_rate * 100 << " %";
//
// Thread-safety: plain values; copies may be used from any thread.
#pragma once

#include <chrono>
#include <cstdint>
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

// Send flags, combinable. Without kReliable a message is unreliable: it may be lost, is never duplicated,
// and is delivered whole or not at all.
namespace send_flags {
inline constexpr uint32_t kUnreliable = 0;
inline constexpr uint32_t kReliable = 1u << 0;
// Send at once instead of waiting up to the Nagle delay (5 ms) to coalesce with the next messages.
inline constexpr uint32_t kNoNagle = 1u << 1;
// Unreliable only: if the message cannot leave right now (congestion window full, not yet connected),
// drop it and return kDropped instead of queueing it. Implies kNoNagle.
inline constexpr uint32_t kNoDelay = 1u << 2;
}  // namespace send_flags

enum class SendResult : uint8_t {
  kOk,
  kDropped,          // a kNoDelay message that could not leave now, or an empty unreliable one
  kLimitExceeded,    // the connection's send buffer is full: retry after some data is acknowledged
  kMessageTooLarge,  // above max_message_size (reliable) or 64 KiB (unreliable)
  kInvalidState,     // the connection is closing or closed
  kInvalidLane,      // no such lane (see Host::configure_lanes)
  kNoConnection,     // no such connection handle
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
  bool incoming = false;           // the peer connected to us (through a listen socket)
  PeerId remote_peer;              // peer-to-peer connections: the peer's signaling name
  uint32_t listen_socket = 0;      // the listen socket it came through; 0 for outgoing connections
  PublicKey remote_key{};          // all zero until the handshake has proven the peer's key
  std::string remote_fingerprint;  // Identity::fingerprint_of(remote_key); empty until known
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
  std::chrono::microseconds rtt{0};  // smoothed round-trip time
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
  uint64_t unreliable_dropped = 0;  // unreliable messages abandoned (a fragment lost, or kNoDelay)
  uint64_t queued_bytes = 0;        // accepted by send() but not yet acknowledged, all lanes
  std::vector<uint64_t> lane_queued_bytes;
};

}  // namespace peerlink
