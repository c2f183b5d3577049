// Values shared by the Connection, the Endpoint and their users: states, send flags and results, received
// messages, events and statistics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "peerlink/connection.hpp"
#include "peerlink/end_reason.hpp"
#include "peerlink/identity.hpp"
#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

using ConnectionId = uint32_t;  // our local id for the connection; 0 is never used

// The public value types, shared as they are.
using peerlink::ConnectionState;
using peerlink::LaneConfig;
using peerlink::SendResult;
namespace send_flags = peerlink::send_flags;

// Known bits only, and kDropIfBlocked only with kUnreliable.
inline bool valid_send_flags(uint32_t flags) {
  return (flags & ~send_flags::kAll) == 0 &&
         (!(flags & send_flags::kDropIfBlocked) || (flags & send_flags::kUnreliable));
}
// The message is to leave now, not after the Nagle delay.
inline bool sends_at_once(uint32_t flags) {
  return (flags & (send_flags::kNoNagle | send_flags::kDropIfBlocked)) != 0;
}

struct ReceivedMessage {
  ConnectionId connection = 0;
  uint32_t lane = 0;
  bool reliable = false;
  uint64_t number =
      0;  // per lane and kind, from 1: reliable = the order sent; unreliable = the order delivered
  std::vector<uint8_t> data;
};

struct ConnectionStats {
  bool rtt_sampled = false;  // false: the rtt fields are the initial guess, not a measurement
  Duration rtt_smoothed{};
  Duration rtt_min{};
  Duration rtt_variance{};
  double loss_rate = 0;      // recent fraction of packets lost (0–1)
  double quality = 1;        // 1 - recent loss, 0–1
  double send_rate_bps = 0;  // recent bytes per second put on the wire
  uint64_t congestion_window = 0;
  uint64_t bytes_in_flight = 0;
  size_t packet_size = 0;  // current maximum datagram size (after path MTU probing)
  uint64_t packets_sent = 0, packets_received = 0, packets_lost = 0, packets_retransmitted = 0;
  uint64_t packets_lost_spurious = 0;  // declared lost, then acknowledged: the path reorders
  // The loss thresholds now (RFC 9002's 3 packets and 9/8 RTT, raised by spurious losses, back after
  // 10 s without reordering): a packet is lost when this many later ones were acknowledged, or when a
  // later one was and it is older than this many eighths of the RTT.
  uint64_t loss_threshold_packets = 3;
  uint32_t loss_threshold_rtt_eighths = 9;
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t packets_rejected_auth = 0;  // failed AEAD authentication (corrupt or forged)
  uint64_t packets_duplicate = 0;      // replayed or duplicated packet numbers
  uint64_t key_updates = 0;
  uint64_t messages_sent = 0, messages_received = 0;
  uint64_t unreliable_dropped = 0;  // unreliable messages abandoned (a fragment lost, or drop-if-blocked)
  uint64_t queued_bytes = 0;        // all lanes
  std::vector<uint64_t> lane_queued_bytes;
};

enum class EventKind : uint8_t {
  kIncomingRequest,  // a peer wants to connect: accept() or reject(); remote_key says who
  kStateChanged,     // connected or closed (state, reason, debug)
};

struct Event {
  EventKind kind = EventKind::kStateChanged;
  ConnectionId connection = 0;
  ConnectionState state = ConnectionState::kConnecting;
  uint32_t reason = 0;
  std::string debug;
  PublicKey remote_key{};
};

}  // namespace peerlink::protocol
