// Connection: its lifecycle (state, close, linger, draining), timers, lanes and statistics. The send path
// is in connection_send.cpp, the receive path in connection_receive.cpp, acknowledgements and loss
// detection in connection_recovery.cpp, the handshake in connection_handshake.cpp.
#include "transport/protocol/connection.hpp"

#include <algorithm>

#include "transport/protocol/connection_keys.hpp"
#include "transport/protocol/handshake_context.hpp"
#include "transport/protocol/lane.hpp"

namespace peerlink::protocol {

ConnectionState Connection::state() const {
  switch (phase_) {
    case Phase::kHandshake:
      return ConnectionState::kConnecting;
    case Phase::kConnected:
      return ConnectionState::kConnected;
    case Phase::kLinger:
    case Phase::kDraining:
      return released_ ? ConnectionState::kClosing : ConnectionState::kClosed;
    case Phase::kClosed:
      return ConnectionState::kClosed;
  }
  return ConnectionState::kClosed;
}

void Connection::emit_state(Instant now) {
  (void)now;
  if (released_) return;
  ConnectionState s = state();
  if (s == reported_state_) return;
  reported_state_ = s;
  Event e;
  e.kind = EventKind::kStateChanged;
  e.connection = local_id_;
  e.state = s;
  e.reason = end_reason_;
  e.debug = end_debug_;
  if (remote_key_) e.remote_key = *remote_key_;
  events_->push_back(std::move(e));
}

Lane& Connection::lane(uint32_t index) {
  if (index >= lanes_.size()) lanes_.resize(index + 1);
  auto& slot = lanes_[index];
  if (!slot) {
    slot = std::make_unique<Lane>();
    if (index < lane_configs_.size()) slot->config = lane_configs_[index];
    slot->peer_max = peer_initial_lane_max_;
    slot->local_max = cfg_.lane_receive_window;
    slot->vtime = vtime_;
  }
  return *slot;
}

bool Connection::configure_lanes(const std::vector<LaneConfig>& lanes) {
  if (lanes.empty() || lanes.size() > kMaxLanes) return false;
  for (const LaneConfig& c : lanes) {
    if (c.weight == 0) return false;
  }
  lane_configs_ = lanes;
  for (size_t i = 0; i < lanes_.size() && i < lanes.size(); ++i) {
    if (lanes_[i]) lanes_[i]->config = lanes[i];
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Timers

Instant Connection::next_deadline() const {
  if (finished_) return kNever;
  Instant d = kNever;
  if (reject_reason_ != 0) return Instant::min();
  if (phase_ == Phase::kHandshake) {
    d = std::min(d, created_ + cfg_.connect_timeout);
    if (hs_) d = std::min(d, hs_->send_now ? Instant::min() : hs_->next_retransmit);
  }
  if (phase_ == Phase::kClosed) return d;
  d = std::min(d, drain_until_);
  d = std::min(d, linger_until_);
  if (keys_) {
    d = std::min(d, loss_or_pto_deadline());
    if (ack_pending_) d = std::min(d, ack_immediate_ ? Instant::min() : ack_deadline_);
    if (keys_->prev_discard != kNever) d = std::min(d, keys_->prev_discard);
  }
  if (phase_ == Phase::kConnected || phase_ == Phase::kLinger) {
    d = std::min(d, idle_deadline_);
    d = std::min(d, std::max(last_received_, last_keepalive_sent_) + keepalive_interval());
    d = std::min(d, send_wakeup_);
  }
  // A CLOSE the pacer held back: nothing is in flight and draining starts only once it is out, so without
  // this wake-up it would wait for a packet from the peer (forever, if none comes).
  if (phase_ == Phase::kDraining && close_pending_) d = std::min(d, send_wakeup_);
  return d;
}

void Connection::on_timeout(Instant now) {
  if (finished_) return;
  wants_transmit_ = true;
  if (phase_ == Phase::kHandshake && now >= created_ + cfg_.connect_timeout) {
    if (saw_bad_handshake_) {
      handshake_failed(uint32_t(EndReason::kRemoteBadCrypt), "the peer's handshake did not authenticate",
                       now);
    } else {
      handshake_failed(uint32_t(EndReason::kMiscConnectTimeout), "no answer from the peer", now);
    }
    return;
  }
  if (drain_until_ <= now) {
    drain_until_ = kNever;
    if (released_) {
      finished_ = true;
    } else {
      phase_ = Phase::kClosed;
      emit_state(now);
    }
    return;
  }
  if (linger_until_ <= now) {
    linger_until_ = kNever;
    enter_closed(uint32_t(EndReason::kMiscLingerTimeout), "linger timed out before the peer acknowledged",
                 now, true);
    return;
  }
  if ((phase_ == Phase::kConnected || phase_ == Phase::kLinger) && idle_deadline_ <= now) {
    enter_closed(uint32_t(EndReason::kRemoteTimeout), "no packets from the peer within the idle timeout", now,
                 false);
    return;
  }
  if (keys_ && keys_->prev_discard <= now) {
    keys_->recv_prev.reset();
    keys_->prev_discard = kNever;
  }
  if (loss_time_ != kNever && loss_time_ <= now) {
    detect_lost(now);
    sent_.trim(now - std::max(rtt_.smoothed(), rtt_.latest()) * 2);
  } else if (keys_ && phase_ != Phase::kClosed && loss_or_pto_deadline() <= now) {
    ++pto_count_;
    probes_to_send_ = 2;
    // Closing: the unacknowledged packet is our CLOSE; a bare PING probe would be wasted (if the peer's
    // answer is lost too, draining ends and the peer only learns of it by its idle timeout).
    if (phase_ == Phase::kDraining && released_ && close_sent_count_ < 8) close_pending_ = true;
  }
  if (ack_pending_ && ack_deadline_ <= now) ack_immediate_ = true;
  if (send_wakeup_ <= now) send_wakeup_ = kNever;
}

Duration Connection::keepalive_interval() const {
  // A keepalive interval longer than the idle timeout would let a healthy idle connection time out.
  return std::min<Duration>(cfg_.keepalive_interval, cfg_.idle_timeout / 2);
}

// ---------------------------------------------------------------------------------------------------------
// Lifecycle

void Connection::close(uint32_t reason, const std::string& debug, bool linger, Instant now) {
  if (released_) return;
  released_ = true;
  if (reason == 0) reason = uint32_t(EndReason::kAppGeneric);
  received_.clear();
  received_bytes_queued_ = 0;
  if (finished_) return;
  if (phase_ == Phase::kClosed || !keys_ ||
      (phase_ == Phase::kHandshake && role_ == Role::kInitiator && hs_ && hs_->finish_noise.empty())) {
    // Nothing established to tell (or already ended): done.
    finished_ = true;
    return;
  }
  if (phase_ == Phase::kHandshake && awaiting_accept_) {
    reject(reason, now);
    return;
  }
  end_reason_ = reason;
  end_debug_ = debug;
  if (linger && phase_ == Phase::kConnected) {
    phase_ = Phase::kLinger;
    linger_until_ = now + cfg_.linger_timeout;
    for (auto& l : lanes_) {
      if (!l) continue;
      l->unreliable.clear();
      l->unreliable_bytes = 0;
    }
    queued_message_overhead_ = 0;
    flush_requested_ = true;
    maybe_finish_linger(now);
    wants_transmit_ = true;
    return;
  }
  enter_closed(reason, debug, now, true);
}

void Connection::maybe_finish_linger(Instant now) {
  for (const auto& l : lanes_) {
    if (l && !l->send.all_acked()) return;
  }
  linger_until_ = kNever;
  enter_closed(end_reason_, end_debug_, now, true);
}

void Connection::enter_closed(uint32_t reason, const std::string& debug, Instant now, bool send_close) {
  // Always this ending's own reason, also in linger: a completed linger passes the application's reason
  // (maybe_finish_linger), but a linger timeout or a protocol violation must not tell the peer "closed
  // normally" when it did not get every message.
  end_reason_ = reason;
  end_debug_ = debug;
  linger_until_ = kNever;
  for (auto& l : lanes_) {
    if (!l) continue;
    l->send = ReliableSendStream();
    l->unreliable.clear();
    l->unreliable_bytes = 0;
  }
  queued_message_overhead_ = 0;
  sent_.clear();
  bytes_in_flight_ = 0;
  ack_eliciting_in_flight_ = 0;
  loss_time_ = kNever;
  ack_pending_ = false;
  if (send_close && keys_ && peer_id_ != 0) {
    phase_ = Phase::kDraining;
    close_pending_ = true;
    drain_until_ = kNever;  // set once the CLOSE is out
    wants_transmit_ = true;
  } else if (released_) {
    finished_ = true;
  } else {
    phase_ = Phase::kClosed;
  }
  emit_state(now);
}

void Connection::protocol_violation(const std::string& what, Instant now) {
  enter_closed(uint32_t(EndReason::kRemoteProtocolViolation), what, now, true);
}

ConnectionStats Connection::stats(Instant now) const {
  (void)now;
  ConnectionStats s = stats_;
  s.loss_threshold_packets = reorder_threshold_;
  s.loss_threshold_rtt_eighths = reorder_time_eighths_;
  s.rtt_sampled = rtt_.has_sample();
  s.rtt_smoothed = rtt_.smoothed();
  s.rtt_min = rtt_.min();
  s.rtt_variance = rtt_.variance();
  s.loss_rate = loss_ewma_;
  s.quality = std::clamp(1.0 - loss_ewma_, 0.0, 1.0);
  s.send_rate_bps = rate_ewma_;
  s.congestion_window = cc_.window();
  s.bytes_in_flight = bytes_in_flight_;
  s.packet_size = packet_size_;
  s.queued_bytes = 0;
  for (size_t i = 0; i < lanes_.size(); ++i) {
    uint64_t q = lanes_[i] ? lanes_[i]->queued_bytes() : 0;
    s.lane_queued_bytes.push_back(q);
    s.queued_bytes += q;
  }
  if (reassembly_) s.unreliable_dropped += reassembly_->dropped();
  return s;
}

std::string Connection::debug_string() const {
  std::string s = "peer_max_data " + std::to_string(peer_max_data_) + " sent_new " +
                  std::to_string(sent_new_total_) + " local_max_data " + std::to_string(local_max_data_) +
                  " consumed " + std::to_string(consumed_total_) + " received_total " +
                  std::to_string(received_total_) + " unsent_since_set " +
                  std::to_string(unsent_since_ != kNever) + " flush " + std::to_string(flush_requested_) +
                  " probes " + std::to_string(probes_to_send_) + " pto_count " + std::to_string(pto_count_);
  if (cc_.algorithm() == CongestionAlgorithm::kBbr) {
    const Bbr& b = cc_.bbr();
    const auto min_rtt = b.min_rtt();
    s += " | bbr mode " + std::to_string(int(b.mode())) + " bw " +
         std::to_string(uint64_t(b.bottleneck_bandwidth())) + " min_rtt_us " +
         std::to_string(min_rtt ? std::chrono::duration_cast<std::chrono::microseconds>(*min_rtt).count()
                                : -1) +
         " cwnd " + std::to_string(b.window()) + " inflight_cap " +
         (b.inflight_cap() == UINT64_MAX ? std::string("none") : std::to_string(b.inflight_cap()));
  }
  for (size_t i = 0; i < lanes_.size(); ++i) {
    const Lane* l = lanes_[i].get();
    if (!l) continue;
    s += " | lane " + std::to_string(i) + ": next " + std::to_string(l->send.next_offset()) + " end " +
         std::to_string(l->send.end_offset()) + " peer_max " + std::to_string(l->peer_max) + " retx " +
         std::to_string(l->send.has_retransmit()) + " unrel " + std::to_string(l->unreliable.size()) +
         " recv_consumed " + std::to_string(l->recv.consumed_offset()) + " recv_highest " +
         std::to_string(l->recv.highest_offset()) + " ooo " + std::to_string(l->recv.out_of_order_bytes()) +
         " local_max " + std::to_string(l->local_max) + " max_dirty " + std::to_string(l->max_dirty);
  }
  return s;
}

}  // namespace peerlink::protocol
