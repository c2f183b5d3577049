// One secure connection's protocol state machine (sans-I/O). The Endpoint routes datagrams, timeouts and
// application commands to it and pulls datagrams out; the Connection owns no socket, clock or thread.
//
// Per packet it does: AEAD with a replay window and key updates; ACK ranges, RTT and loss detection with
// probe timeouts (RFC 9002); congestion control and pacing; reliable lanes (byte streams of message
// records, retransmitted by range) and unreliable messages (fragmented, dropped whole); flow control per
// connection and per lane; path MTU probing; keepalive, idle timeout and graceful or immediate close.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "transport/crypto/aead.hpp"
#include "transport/crypto/noise.hpp"
#include "transport/crypto/random.hpp"
#include "transport/protocol/buffer.hpp"
#include "transport/protocol/config.hpp"
#include "transport/protocol/congestion.hpp"
#include "transport/protocol/connection_types.hpp"
#include "transport/protocol/frames.hpp"
#include "transport/protocol/packet.hpp"
#include "transport/protocol/path_address.hpp"
#include "transport/protocol/received_packets.hpp"
#include "transport/protocol/reliable_send_stream.hpp"
#include "transport/protocol/rtt_estimator.hpp"
#include "transport/protocol/sent_packets.hpp"

namespace peerlink::protocol {

// Keys an initiator's handshake may start with instead of computing them (see Endpoint::wants_ephemeral).
struct PreparedKeys {
  crypto::X25519Local identity_object;  // made from the identity passed with these, or empty
  std::optional<crypto::X25519KeyPair> ephemeral;
  std::optional<crypto::Key32> static_static;  // DH(identity, the expected peer key)
};

class Lane;
class UnreliableReassembly;
struct HandshakeContext;

class Connection {
 public:
  enum class Role : uint8_t { kInitiator, kResponder };

  // Initiator: pattern IK when the peer's key is known, XX otherwise.
  Connection(ConnectionId local_id, const PathAddress& peer, const ConnectionConfig& cfg,
             const crypto::X25519KeyPair& identity, const std::optional<PublicKey>& expected_peer_key,
             crypto::AeadAlgorithm suite, crypto::RandomSource& rng, std::deque<Event>* events, Instant now,
             const PreparedKeys& prepared = {});
  // Responder, after the Endpoint has validated the Initiation and read its first Noise message into hs.
  Connection(ConnectionId local_id, const PathAddress& peer, const ConnectionConfig& cfg,
             std::unique_ptr<HandshakeContext> hs, crypto::RandomSource& rng, std::deque<Event>* events,
             Instant now);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ConnectionId id() const { return local_id_; }
  ConnectionId peer_id() const { return peer_id_; }
  Role role() const { return role_; }
  const PathAddress& peer_address() const { return peer_; }
  ConnectionState state() const;
  uint32_t end_reason() const { return end_reason_; }
  const std::string& end_debug() const { return end_debug_; }
  const std::optional<PublicKey>& remote_key() const { return remote_key_; }
  bool awaiting_accept() const { return awaiting_accept_; }
  // Nothing left to do: the Endpoint may free it.
  bool finished() const { return finished_; }
  // Closed with linger and still delivering what was sent before the close.
  bool lingering() const { return phase_ == Phase::kLinger; }

  // --- application commands ---
  SendResult send(const uint8_t* data, size_t len, uint32_t flags, uint32_t lane, Instant now);
  // The same, taking the buffer instead of copying it; message is moved from only on kOk.
  SendResult send(std::vector<uint8_t>&& message, uint32_t flags, uint32_t lane, Instant now);
  // Whether the send buffer has room for a message of len bytes (send() refuses it with kLimitExceeded
  // otherwise).
  bool has_send_room(size_t len) const;
  bool configure_lanes(const std::vector<LaneConfig>& lanes);
  bool pop_message(ReceivedMessage& out);
  size_t pending_messages() const { return received_.size(); }
  // linger: keep sending until the peer has every reliable message, then close. Releases the connection:
  // no more events or messages reach the application.
  void close(uint32_t reason, const std::string& debug, bool linger, Instant now);
  void accept(Instant now);
  void reject(uint32_t reason, Instant now);
  // The path works again after an outage: the probe timeout, backed off while nothing came back, starts
  // over and unacknowledged data is probed at once instead of at the next (up to max_probe_timeout) probe.
  void on_path_restored(Instant now);
  ConnectionStats stats(Instant now) const;
  // Packet counts without building stats() (the Host's P2P path watch reads them often): packets
  // received, and packets sent that a working path answers with an acknowledgement (ack-eliciting ones,
  // MTU probes aside: a probe larger than the path's MTU is lost by design).
  uint64_t packets_received() const { return stats_.packets_received; }
  uint64_t answerable_packets_sent() const { return answerable_sent_; }
  // Internal state in one line, for test failure messages and debug logs.
  std::string debug_string() const;

  // --- driven by the Endpoint ---
  // A data packet for this connection; the Endpoint has decoded its header (to find the connection).
  void on_data_packet(Instant now, const PathAddress& from, const DataHeader& header, uint8_t* data,
                      size_t len);
  void on_response(Instant now, const ResponsePacket& p);
  void on_finish(Instant now, const FinishPacket& p);
  void on_retry(Instant now, const RetryPacket& p);
  void on_reject(Instant now, const RejectPacket& p);
  // A retransmitted Initiation reached the responder: resend the Response.
  void on_initiation_repeat(Instant now);
  // Responder set-up by the Endpoint: the initiator's id, and either "address proven by a retry cookie"
  // (bytes_received == 0) or the size of the unproven Initiation that the 3x amplification limit counts.
  void set_peer_id(ConnectionId id);
  void set_address_validated(uint64_t bytes_received);
  bool address_validated() const { return address_validated_; }
  // Builds the next datagram into out (at most cap bytes); 0 when nothing should be sent now.
  size_t poll_transmit(Instant now, uint8_t* out, size_t cap);
  void on_timeout(Instant now);
  Instant next_deadline() const;
  // True if the response to the last input may have produced something to send.
  bool wants_transmit() const { return wants_transmit_; }
  void clear_wants_transmit() { wants_transmit_ = false; }

 private:
  // What both public constructors share.
  Connection(Role role, ConnectionId local_id, const PathAddress& peer, const ConnectionConfig& cfg,
             crypto::RandomSource& rng, std::deque<Event>* events, Instant now);

  enum class Phase : uint8_t {
    kHandshake,  // no transport keys yet (initiator) or awaiting accept / confirmation
    kConnected,
    kLinger,    // app closed gracefully: flushing reliable data
    kDraining,  // CLOSE sent or received: wait out stray packets, then finish
    kClosed,    // ended, waiting for the application to release it
  };

  struct Keys;
  struct PacketBuilder;

  SendResult queue_message(const uint8_t* data, size_t len, std::vector<uint8_t>* owned, uint32_t flags,
                           uint32_t lane, Instant now);

  // handshake
  size_t build_handshake_packet(Instant now, uint8_t* out, size_t cap);
  void install_keys(const crypto::TransportKeys& k, Instant now);
  void write_response(Instant now);
  void handshake_failed(uint32_t reason, const std::string& debug, Instant now);
  void become_connected(Instant now);
  std::vector<uint8_t> transport_params() const;
  void apply_transport_params(const std::vector<uint8_t>& payload);

  // packets
  bool open_packet(Instant now, const DataHeader& header, uint8_t* data, size_t len, uint64_t& pn,
                   size_t& plain_len);
  void process_frames(Instant now, const uint8_t* p, size_t len, bool& ack_eliciting);
  // What the next data packet may carry, decided before anything is written (connection_send.cpp).
  struct PacketPlan {
    size_t limit = 0;            // its size limit
    bool probing_mtu = false;    // a PING padded to limit, to probe the path MTU
    bool probe = false;          // a probe timeout's packet: it leaves whatever the congestion window
    bool may_send_more = false;  // window and pacer allow new ack-eliciting content
    bool keepalive_due = false;
    bool data = false;  // stream data is waiting
  };
  size_t build_data_packet(Instant now, uint8_t* out, size_t cap);
  bool plan_packet(Instant now, size_t cap, PacketPlan& plan);  // false: nothing may leave now
  void write_ack(Instant now, Writer& w);
  // Returns true if it wrote an ack-eliciting frame (so do write_control_frames and fill_stream_frames).
  bool write_frames(Instant now, const PacketPlan& plan, Writer& w, SentPacket& sp, PacketSources& sources);
  bool write_control_frames(Writer& w, SentPacket& sp);
  void on_packet_sent(Instant now, SentPacket& sp, size_t size, bool ack_eliciting, bool probe);
  size_t seal(Instant now, uint8_t* out, size_t payload_len, const PacketSources& sources);
  void maybe_update_keys(Instant now);

  // reliability
  void on_ack_frame(Instant now, const AckFrame& f);
  void detect_lost(Instant now);
  void on_packet_lost(Instant now, SentPacket& sp);
  void sample_delivery(Instant now, const SentPacket& sp);
  void on_packet_acked(Instant now, SentPacket& sp);
  Instant loss_or_pto_deadline() const;
  Duration pto_duration() const;

  // data
  Lane& lane(uint32_t index);
  Lane* pick_lane(bool allow_new_data);
  uint64_t new_data_limit(const Lane& l) const;
  bool lane_has_data(const Lane& l, bool allow_new) const;
  bool has_sendable_data(Instant now) const;
  bool flow_control_blocked() const;  // a lane has data the peer's credit does not let out yet
  bool nagle_allows(Instant now) const;
  bool lane_max_dirty() const;
  uint32_t desired_ack_threshold() const;
  Duration keepalive_interval() const;
  // Returns true if it wrote an ack-eliciting frame.
  bool fill_stream_frames(Instant now, Writer& w, SentPacket& sp, PacketSources& sources);
  void on_reliable_frame(Instant now, const ReliableFrame& f);
  void on_unreliable_frame(Instant now, const UnreliableFrame& f);
  void deliver(uint32_t lane, bool reliable, std::vector<uint8_t>&& data);
  void update_receive_windows();
  uint64_t queued_send_bytes() const;

  // lifecycle
  void enter_closed(uint32_t reason, const std::string& debug, Instant now, bool send_close);
  void emit_state(Instant now);
  void protocol_violation(const std::string& what, Instant now);
  void maybe_finish_linger(Instant now);

  // --- identity and path ---
  Role role_;
  ConnectionId local_id_;
  ConnectionId peer_id_ = 0;
  PathAddress peer_;
  const ConnectionConfig& cfg_;
  crypto::RandomSource& rng_;
  std::deque<Event>* events_;
  std::optional<PublicKey> remote_key_;

  // --- lifecycle ---
  Phase phase_ = Phase::kHandshake;
  bool released_ = false;
  bool finished_ = false;
  bool awaiting_accept_ = false;
  bool wants_transmit_ = true;
  bool close_pending_ = false;      // a CLOSE frame must be (re)sent
  bool saw_bad_handshake_ = false;  // a Response failed to authenticate (reported if we time out)
  uint16_t reject_reason_ = 0;      // responder: a Reject packet must be sent
  uint32_t end_reason_ = 0;
  std::string end_debug_;
  ConnectionState reported_state_ = ConnectionState::kConnecting;
  Instant created_;
  Instant drain_until_ = kNever;
  Instant linger_until_ = kNever;

  std::unique_ptr<HandshakeContext> hs_;
  std::unique_ptr<Keys> keys_;

  // --- anti-amplification (responder, before the peer's address is proven) ---
  bool address_validated_ = false;
  uint64_t unvalidated_received_ = 0;
  uint64_t unvalidated_sent_ = 0;

  // --- packet numbers, acks, loss ---
  uint64_t next_pn_ = 0;
  ReceivedPackets received_pns_;
  uint32_t ack_eliciting_unacked_ = 0;
  uint32_t ack_threshold_ = 2;           // ours to apply: the config's, or what the peer asked for
  uint64_t peer_ack_frequency_seq_ = 0;  // newest ACK_FREQUENCY sequence seen
  uint64_t ack_frequency_seq_ = 0;       // newest we sent
  uint32_t ack_frequency_requested_ = 0;
  bool ack_frequency_dirty_ = false;
  bool ack_pending_ = false;
  bool ack_immediate_ = false;
  Instant ack_deadline_ = kNever;
  SentPackets sent_;
  RttEstimator rtt_;
  uint64_t largest_acked_ = 0;
  bool any_acked_ = false;
  Instant loss_time_ = kNever;
  // Loss thresholds (RFC 9002: 3 packets, 9/8 RTT), raised when a packet declared lost turns up after all,
  // and back to these once the path has not reordered for kReorderMemory: a one-off (a route change, a
  // Wi-Fi roam) would otherwise slow loss detection for the rest of the connection, while a path that
  // reorders now and then keeps its tolerance.
  static constexpr uint64_t kInitialReorderThreshold = 3;
  static constexpr uint64_t kMaxReorderThreshold = 64;
  static constexpr Duration kReorderMemory = std::chrono::seconds(10);
  uint64_t reorder_threshold_ = kInitialReorderThreshold;
  static constexpr uint32_t kInitialReorderTimeEighths = 9;
  uint32_t reorder_time_eighths_ = kInitialReorderTimeEighths;
  Instant last_reordered_ =
      kNever;                  // a packet was acknowledged after a later one, or declared lost and was not
  uint32_t episode_lost_ = 0;  // packets declared lost in the current loss episode
  uint32_t episode_spurious_ = 0;  // of those, acknowledged after all
  uint32_t pto_count_ = 0;
  uint32_t probes_to_send_ = 0;
  uint32_t ack_eliciting_in_flight_ = 0;
  uint64_t ack_in_flight_before_ = 0;
  uint32_t close_sent_count_ = 0;
  Instant last_ack_eliciting_sent_ = kNever;
  uint64_t answerable_sent_ = 0;  // answerable_packets_sent()
  uint64_t bytes_in_flight_ = 0;
  CongestionController cc_;
  Pacer pacer_;
  // Delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation), for BBR: bytes acknowledged so
  // far, when the last of them was, when the newest acknowledged packet was sent, and the delivered count
  // up to which samples are application-limited (0: none).
  uint64_t delivered_ = 0;
  Instant delivered_time_{};
  Instant first_sent_time_{};
  uint64_t app_limited_until_ = 0;
  // Since the last AckEvent: bytes declared lost, and bytes declared lost earlier that were acknowledged.
  uint64_t lost_bytes_ = 0;
  uint64_t spurious_bytes_ = 0;
  RateSample rate_sample_;  // being built while an ACK frame is processed

  // --- timers ---
  Instant last_received_;
  Instant last_keepalive_sent_ = Instant::min();
  Instant idle_deadline_ = kNever;
  Instant unsent_since_ = kNever;         // Nagle: oldest queued byte not yet sent
  bool flush_requested_ = false;          // a no-Nagle message is queued
  mutable Instant send_wakeup_ = kNever;  // queued data waits for the pacer or Nagle until then

  // --- path MTU ---
  size_t packet_size_ = 1200;
  size_t mtu_probe_low_ = 1200;   // largest size known to work
  size_t mtu_probe_high_ = 1200;  // smallest size known to fail, minus one
  size_t mtu_probe_size_ = 0;     // in flight; 0 = none
  uint32_t mtu_probe_failures_ = 0;

  // --- data ---
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<LaneConfig> lane_configs_;
  std::unique_ptr<UnreliableReassembly> reassembly_;
  std::deque<ReceivedMessage> received_;
  size_t received_bytes_queued_ = 0;
  uint64_t peer_max_data_ = 0;  // connection-wide credit the peer granted
  uint64_t peer_initial_lane_max_ = 0;
  uint64_t sent_new_total_ = 0;  // sum over lanes of new reliable bytes sent
  uint64_t local_max_data_ = 0;  // what we granted
  uint64_t received_total_ = 0;  // sum over lanes of highest received offsets
  uint64_t consumed_total_ = 0;  // sum over lanes of bytes parsed in order
  uint64_t queued_message_overhead_ = 0;
  bool max_data_dirty_ = false;
  uint64_t next_unreliable_id_ = 1;
  double vtime_ = 0;  // weighted fair queueing clock

  // --- stats ---
  ConnectionStats stats_;
  double loss_ewma_ = 0;
  double rate_ewma_ = 0;
  Instant rate_window_start_ = Instant::min();
  uint64_t rate_window_bytes_ = 0;
};

}  // namespace peerlink::protocol
