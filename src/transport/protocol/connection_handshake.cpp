// Connection: construction, the Noise handshake packets, transport parameters and key installation.
#include <algorithm>

#include "transport/protocol/connection.hpp"
#include "transport/protocol/connection_keys.hpp"
#include "transport/protocol/handshake_context.hpp"
#include "transport/protocol/lane.hpp"
#include "transport/protocol/transport_params.hpp"

namespace peerlink::protocol {

Connection::Connection(Role role, ConnectionId local_id, const PathAddress& peer, const ConnectionConfig& cfg,
                       crypto::RandomSource& rng, std::deque<Event>* events, Instant now)
    : role_(role),
      local_id_(local_id),
      peer_(peer),
      cfg_(cfg),
      rng_(rng),
      events_(events),
      created_(now),
      rtt_(cfg.initial_rtt),
      cc_(cfg.congestion, 1200, cfg.initial_window_packets, local_id),
      last_received_(now),
      local_max_data_(cfg.connection_receive_window) {
  lane_configs_.resize(1);
  ack_threshold_ = std::max<uint32_t>(cfg.ack_eliciting_threshold, 1);
  ack_frequency_requested_ = ack_threshold_;  // what the peer applies until told otherwise
  mtu_probe_high_ = std::max<size_t>(cfg.max_packet_size, 1200);
}

Connection::Connection(ConnectionId local_id, const PathAddress& peer, const ConnectionConfig& cfg,
                       const crypto::X25519KeyPair& identity,
                       const std::optional<PublicKey>& expected_peer_key, crypto::AeadAlgorithm suite,
                       crypto::RandomSource& rng, std::deque<Event>* events, Instant now,
                       const PreparedKeys& prepared)
    : Connection(Role::kInitiator, local_id, peer, cfg, rng, events, now) {
  address_validated_ = true;  // we chose the address
  crypto::HandshakeConfig hc;
  HandshakePattern pattern = expected_peer_key ? HandshakePattern::kIK : HandshakePattern::kXX;
  hc.pattern = expected_peer_key ? crypto::NoisePattern::kIK : crypto::NoisePattern::kXX;
  hc.cipher = suite;
  hc.initiator = true;
  hc.prologue = handshake_prologue(to_suite(suite), pattern);
  hc.local_static = identity;
  hc.local_static_object = prepared.identity_object;
  if (expected_peer_key) hc.remote_static = *expected_peer_key;
  hc.local_ephemeral = prepared.ephemeral;
  hc.static_static = prepared.static_static;  // the Noise side uses it only with remote_static (IK)
  hs_ = std::make_unique<HandshakeContext>(hc, rng);
  hs_->pattern = pattern;
  hs_->suite = to_suite(suite);
  hs_->expected_peer_key = expected_peer_key;
  std::vector<uint8_t> params = transport_params();
  hs_->noise->write_message(params.data(), params.size(), hs_->initiation_noise);
  hs_->send_now = true;
}

Connection::Connection(ConnectionId local_id, const PathAddress& peer, const ConnectionConfig& cfg,
                       std::unique_ptr<HandshakeContext> hs, crypto::RandomSource& rng,
                       std::deque<Event>* events, Instant now)
    : Connection(Role::kResponder, local_id, peer, cfg, rng, events, now) {
  hs_ = std::move(hs);
  apply_transport_params(hs_->peer_params);
  if (hs_->pattern == HandshakePattern::kIK) {
    // The initiator's static key arrived in message 1: the application decides now.
    remote_key_ = hs_->noise->remote_static();
    awaiting_accept_ = true;
    Event e;
    e.kind = EventKind::kIncomingRequest;
    e.connection = local_id_;
    e.remote_key = *remote_key_;
    events_->push_back(std::move(e));
  } else {
    // XX: answer at once; the initiator's identity arrives in message 3, then the application decides.
    write_response(now);
  }
}

Connection::~Connection() = default;

void Connection::set_peer_id(ConnectionId id) {
  peer_id_ = id;
}

void Connection::set_address_validated(uint64_t bytes_received) {
  if (bytes_received == 0) {
    address_validated_ = true;
  } else {
    unvalidated_received_ += bytes_received;
  }
}

std::vector<uint8_t> Connection::transport_params() const {
  TransportParams p;
  p.max_data = cfg_.connection_receive_window;
  p.max_lane_data = cfg_.lane_receive_window;
  return encode_transport_params(p);
}

void Connection::apply_transport_params(const std::vector<uint8_t>& payload) {
  const TransportParams p = decode_transport_params(payload.data(), payload.size());
  peer_max_data_ = p.max_data;
  peer_initial_lane_max_ = p.max_lane_data;
  for (auto& l : lanes_) {
    if (l) l->peer_max = std::max(l->peer_max, peer_initial_lane_max_);
  }
}

void Connection::write_response(Instant now) {
  std::vector<uint8_t> params = transport_params();
  if (hs_->noise->write_message(params.data(), params.size(), hs_->response_noise) !=
      crypto::HandshakeError::kNone) {
    handshake_failed(uint32_t(EndReason::kMiscInternalError), "could not write handshake response", now);
    return;
  }
  if (hs_->noise->complete()) install_keys(hs_->noise->split(), now);
  hs_->send_now = true;
  wants_transmit_ = true;
}

void Connection::accept(Instant now) {
  if (!awaiting_accept_) return;
  awaiting_accept_ = false;
  if (hs_ && hs_->pattern == HandshakePattern::kIK) {
    write_response(now);  // confirmed when the initiator's first data packet arrives
  } else {
    become_connected(now);  // XX: message 3 was read already
  }
}

void Connection::reject(uint32_t reason, Instant now) {
  if (!awaiting_accept_) return;
  awaiting_accept_ = false;
  released_ = true;
  if (keys_) {
    // XX: the initiator has keys; tell it in an authenticated CLOSE.
    enter_closed(reason, "rejected", now, true);
  } else {
    reject_reason_ = uint16_t(std::min<uint32_t>(reason, 0xffff));
    phase_ = Phase::kDraining;
    drain_until_ = now;  // finishes once the Reject is out
    wants_transmit_ = true;
  }
}

size_t Connection::build_handshake_packet(Instant now, uint8_t* out, size_t cap) {
  if (reject_reason_ != 0) {
    RejectPacket p;
    p.receiver_id = peer_id_;
    p.reason = reject_reason_;
    reject_reason_ = 0;
    finished_ = true;
    return encode_reject(p, out, cap);
  }
  if (!hs_ || !(hs_->send_now || now >= hs_->next_retransmit)) return 0;
  size_t n = 0;
  if (role_ == Role::kInitiator && !hs_->finish_noise.empty()) {
    FinishPacket p;
    p.receiver_id = peer_id_;
    p.sender_id = local_id_;
    p.noise = hs_->finish_noise.data();
    p.noise_length = hs_->finish_noise.size();
    n = encode_finish(p, out, cap);
  } else if (role_ == Role::kInitiator) {
    if (keys_) return 0;
    InitiationPacket p;
    p.suite = hs_->suite;
    p.pattern = hs_->pattern;
    p.sender_id = local_id_;
    p.cookie = hs_->has_cookie ? hs_->cookie.data() : nullptr;
    p.noise = hs_->initiation_noise.data();
    p.noise_length = hs_->initiation_noise.size();
    n = encode_initiation(p, out, cap);
  } else {
    if (hs_->response_noise.empty()) return 0;
    ResponsePacket p;
    p.receiver_id = peer_id_;
    p.sender_id = local_id_;
    p.noise = hs_->response_noise.data();
    p.noise_length = hs_->response_noise.size();
    n = encode_response(p, out, cap);
    if (!address_validated_) {
      if (unvalidated_sent_ + n > 3 * unvalidated_received_) return 0;  // anti-amplification
      unvalidated_sent_ += n;
    }
  }
  if (n == 0) return 0;
  if (!hs_->send_now) ++hs_->retransmits;
  hs_->send_now = false;
  Duration backoff = cfg_.initial_rtt * 2 * (int64_t{1} << std::min<uint32_t>(hs_->retransmits, 5));
  hs_->next_retransmit = now + std::min<Duration>(backoff, cfg_.max_probe_timeout);
  ++stats_.packets_sent;
  stats_.bytes_sent += n;
  return n;
}

void Connection::on_initiation_repeat(Instant now) {
  (void)now;
  if (hs_ && !hs_->response_noise.empty() && phase_ == Phase::kHandshake) {
    hs_->send_now = true;
    wants_transmit_ = true;
  }
}

void Connection::on_retry(Instant now, const RetryPacket& p) {
  (void)now;
  if (role_ != Role::kInitiator || !hs_ || keys_ || hs_->retries_received >= 2) return;
  ++hs_->retries_received;
  std::copy(p.cookie, p.cookie + kCookieSize, hs_->cookie.begin());
  hs_->has_cookie = true;
  hs_->send_now = true;
  wants_transmit_ = true;
}

void Connection::on_reject(Instant now, const RejectPacket& p) {
  if (role_ != Role::kInitiator || !hs_ || keys_) return;
  uint32_t reason = p.reason;
  if (!is_app_reason(reason) && !is_remote_reason(reason)) reason = uint32_t(EndReason::kRemoteRejected);
  handshake_failed(reason, "the peer refused the connection", now);
}

void Connection::on_response(Instant now, const ResponsePacket& p) {
  if (role_ != Role::kInitiator || !hs_ || keys_) return;
  // Read into a copy: a forged or corrupted Response must not spoil the real one still on its way.
  auto trial = std::make_unique<crypto::HandshakeState>(*hs_->noise);
  std::vector<uint8_t> payload;
  if (trial->read_message(p.noise, p.noise_length, payload) != crypto::HandshakeError::kNone) {
    ++stats_.packets_rejected_auth;
    saw_bad_handshake_ = true;
    return;
  }
  hs_->noise = std::move(trial);
  peer_id_ = p.sender_id;
  remote_key_ = hs_->noise->remote_static();
  if (hs_->expected_peer_key && remote_key_ && *remote_key_ != *hs_->expected_peer_key) {
    handshake_failed(uint32_t(EndReason::kRemoteKeyMismatch), "the peer presented a different static key",
                     now);
    return;
  }
  apply_transport_params(payload);
  last_received_ = now;
  if (hs_->pattern == HandshakePattern::kXX) {
    std::vector<uint8_t> none;
    if (hs_->noise->write_message(nullptr, 0, hs_->finish_noise) != crypto::HandshakeError::kNone) {
      handshake_failed(uint32_t(EndReason::kMiscInternalError), "could not write handshake message 3", now);
      return;
    }
    install_keys(hs_->noise->split(), now);
    hs_->send_now = true;
    hs_->retransmits = 0;
    wants_transmit_ = true;
    return;  // connected when the responder's first data packet arrives
  }
  install_keys(hs_->noise->split(), now);
  become_connected(now);
}

void Connection::on_finish(Instant now, const FinishPacket& p) {
  if (role_ != Role::kResponder || !hs_ || keys_ || hs_->pattern != HandshakePattern::kXX) return;
  auto trial = std::make_unique<crypto::HandshakeState>(*hs_->noise);
  std::vector<uint8_t> payload;
  if (trial->read_message(p.noise, p.noise_length, payload) != crypto::HandshakeError::kNone) {
    ++stats_.packets_rejected_auth;
    return;
  }
  hs_->noise = std::move(trial);
  address_validated_ = true;
  last_received_ = now;
  remote_key_ = hs_->noise->remote_static();
  install_keys(hs_->noise->split(), now);
  awaiting_accept_ = true;
  Event e;
  e.kind = EventKind::kIncomingRequest;
  e.connection = local_id_;
  e.remote_key = *remote_key_;
  events_->push_back(std::move(e));
}

void Connection::install_keys(const crypto::TransportKeys& k, Instant now) {
  crypto::AeadAlgorithm alg = to_aead(hs_->suite);
  bool initiator = role_ == Role::kInitiator;
  keys_ = std::make_unique<Keys>(alg, initiator ? k.initiator_to_responder : k.responder_to_initiator,
                                 initiator ? k.responder_to_initiator : k.initiator_to_responder, now);
}

void Connection::become_connected(Instant now) {
  if (phase_ != Phase::kHandshake) return;
  phase_ = Phase::kConnected;
  hs_.reset();
  idle_deadline_ = now + cfg_.idle_timeout;
  // An immediate ack-eliciting packet confirms the handshake to the peer.
  probes_to_send_ = std::max<uint32_t>(probes_to_send_, 1);
  wants_transmit_ = true;
  emit_state(now);
}

void Connection::handshake_failed(uint32_t reason, const std::string& debug, Instant now) {
  hs_.reset();
  enter_closed(reason, debug, now, false);
}

}  // namespace peerlink::protocol
