// Tunables of the protocol core. Defaults suit the open internet; tests and benchmarks override.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

enum class CongestionAlgorithm : uint8_t { kNewReno, kCubic, kBbr };
enum class RetryPolicy : uint8_t {
  // A cookie is asked for only when Initiations without one come faster than
  // EndpointConfig::unproven_initiations_per_second (less those whose connection then proved its address):
  // the handshake work that unproven, possibly spoofed, addresses can cause stays bounded, and connects pay
  // no extra round trip otherwise (WireGuard's cookies and QUIC's Retry work so). docs/PROTOCOL.md 4.4.
  kUnderLoad,
  kAlways,  // every Initiation must carry a cookie: no per-peer state before the address is proven
  kNever,   // trusted networks and tests: skips the round trip; the 3x anti-amplification limit still applies
};

struct ConnectionConfig {
  // Packets start at 1200 bytes; probing (RFC 8899 style search) raises them up to this. 1200 = no probing.
  size_t max_packet_size = 1452;
  Duration initial_rtt = milliseconds(100);
  Duration max_ack_delay = milliseconds(5);
  uint32_t ack_eliciting_threshold = 2;  // ack at once after this many ack-eliciting packets
  // With a large congestion window, ask the peer to acknowledge less often (every 4, then every 10 packets):
  // fewer ack packets to build, encrypt and process, as in QUIC's ACK frequency extension. 0 = never ask.
  uint32_t max_ack_threshold_request = 10;
  Duration connect_timeout = seconds(10);
  Duration idle_timeout = seconds(20);
  Duration keepalive_interval = seconds(5);  // capped at half the idle timeout
  Duration max_probe_timeout = seconds(2);  // cap on the backed-off PTO, so recovery after an outage is quick
  Duration nagle_delay = milliseconds(5);
  Duration linger_timeout = seconds(10);  // graceful close gives up after this

  uint64_t connection_receive_window = 24ull << 20;  // reliable bytes in flight towards us, all lanes
  uint64_t lane_receive_window = 16ull << 20;        // the same, per lane
  size_t receive_queue_limit = 96ull << 20;  // delivered but unread bytes before we stop granting credit
  size_t send_buffer_limit = 96ull << 20;    // queued bytes (reliable + unreliable) per connection
  size_t max_message_size = 64ull << 20;     // reliable; unreliable is limited to 64 KiB

  uint64_t key_update_packets = uint64_t{1} << 24;  // sent packets before a key update
  Duration key_update_interval = std::chrono::minutes(10);

  CongestionAlgorithm congestion = CongestionAlgorithm::kBbr;  // docs/PROTOCOL.md 9.2 says why
  uint32_t initial_window_packets = 10;
  bool pacing = true;
};

struct EndpointConfig {
  ConnectionConfig connection;
  RetryPolicy retry = RetryPolicy::kUnderLoad;
  // kUnderLoad: Initiations without a cookie that may run the handshake, per second, also the burst allowed
  // at once. Each costs the responder two to four X25519 operations (about 40 us each) and, if it reads
  // correctly, a half-open connection until the connect timeout.
  uint32_t unproven_initiations_per_second = 32;
  size_t max_connections = 100000;
  Duration cookie_lifetime = seconds(10);
  bool accept_incoming = true;  // false: Initiations are answered with a Reject (kRemoteRejected)
  bool prefer_aes_gcm = true;   // initiators pick AES-256-GCM when the CPU has AES instructions
};

}  // namespace peerlink::protocol
