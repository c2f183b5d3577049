// Connection: packet protection, acknowledgements, loss detection, timers and the connection lifecycle.
#include "transport/protocol/connection.hpp"

#include <algorithm>
#include <cmath>

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

// ---------------------------------------------------------------------------------------------------------
// Receiving

bool Connection::decrypt(Instant now, uint8_t* data, size_t len, uint64_t& pn, size_t& plain_len) {
  DataHeader h;
  if (!keys_ || !decode_data_header(data, len, h)) return false;
  pn = decode_packet_number(received_pns_.any() ? received_pns_.largest() : 0, h.truncated_pn);
  if (pn > kVarintMax || received_pns_.is_duplicate(pn)) {
    ++stats_.packets_duplicate;
    return false;
  }
  Keys& k = *keys_;
  uint8_t* body = data + kDataHeaderSize;
  size_t body_len = len - kDataHeaderSize;
  if (h.key_phase == k.recv_phase) {
    if (!k.recv.open(pn, data, kDataHeaderSize, body, body_len, body)) {
      ++stats_.packets_rejected_auth;
      return false;
    }
  } else if (k.recv_prev && pn < k.recv_phase_first_pn) {
    if (!k.recv_prev->open(pn, data, kDataHeaderSize, body, body_len, body)) {
      ++stats_.packets_rejected_auth;
      return false;
    }
  } else {
    // The peer started a key update (or answers ours).
    crypto::Key32 next = next_key_secret(k.recv_secret);
    crypto::Aead next_aead(k.alg, next);
    if (!next_aead.open(pn, data, kDataHeaderSize, body, body_len, body)) {
      ++stats_.packets_rejected_auth;
      return false;
    }
    k.recv_prev = std::make_unique<crypto::Aead>(std::move(k.recv));
    k.recv = std::move(next_aead);
    k.recv_secret = next;
    k.recv_phase = h.key_phase;
    k.recv_phase_first_pn = pn;
    k.prev_discard = now + pto_duration() * 3;
    if (k.send_phase != k.recv_phase) {
      k.send_secret = next_key_secret(k.send_secret);
      k.send = crypto::Aead(k.alg, k.send_secret);
      k.send_phase = k.recv_phase;
      k.send_phase_first_pn = next_pn_;
      k.send_phase_acked = false;
      k.packets_in_phase = 0;
      k.phase_started = now;
      ++stats_.key_updates;
    }
  }
  plain_len = body_len - kAeadTagSize;
  return true;
}

void Connection::on_data_packet(Instant now, const PathAddress& from, uint8_t* data, size_t len) {
  if (finished_ || !keys_) return;
  if (!address_validated_) unvalidated_received_ += len;
  if (phase_ == Phase::kHandshake && awaiting_accept_) return;  // XX: not accepted yet; the peer resends
  uint64_t pn;
  size_t plain_len;
  if (!decrypt(now, data, len, pn, plain_len)) return;
  bool newest = !received_pns_.any() || pn > received_pns_.largest();
  bool out_of_order = received_pns_.insert(pn, now);
  ++stats_.packets_received;
  stats_.bytes_received += len;
  address_validated_ = true;
  last_received_ = now;
  if (newest && from != peer_) peer_ = from;  // the peer's NAT rebound: follow the newest packet
  if (phase_ == Phase::kClosed) return;       // ended: nothing more to do with its content
  if (phase_ == Phase::kDraining) {
    if (released_ && close_sent_count_ < 8) close_pending_ = true;  // our CLOSE may have been lost
    wants_transmit_ = true;
    return;
  }
  bool ack_eliciting = false;
  process_frames(now, data + kDataHeaderSize, plain_len, pn, ack_eliciting);
  if (finished_ || phase_ == Phase::kClosed || phase_ == Phase::kDraining) return;
  if (phase_ == Phase::kHandshake) become_connected(now);  // the peer's first data packet confirms keys
  idle_deadline_ = now + std::max<Duration>(cfg_.idle_timeout, pto_duration() * 3);
  if (ack_eliciting) {
    ack_pending_ = true;
    ++ack_eliciting_unacked_;
    if (out_of_order || ack_eliciting_unacked_ >= ack_threshold_) ack_immediate_ = true;
    if (ack_deadline_ == kNever) ack_deadline_ = now + cfg_.max_ack_delay;
  } else if (out_of_order && ack_pending_) {
    ack_immediate_ = true;
  }
  wants_transmit_ = true;
}

void Connection::process_frames(Instant now, const uint8_t* p, size_t len, uint64_t pn, bool& ack_eliciting) {
  (void)pn;
  Reader r(p, len);
  Frame f;
  while (!r.empty()) {
    FrameError err = decode_frame(r, f);
    if (err != FrameError::kNone) {
      protocol_violation(std::string("malformed frame: ") + to_string(err), now);
      return;
    }
    switch (f.type) {
      case FrameType::kPadding:
        break;
      case FrameType::kPing:
        ack_eliciting = true;
        break;
      case FrameType::kAck:
        on_ack_frame(now, f.ack);
        break;
      case FrameType::kReliable:
        ack_eliciting = true;
        on_reliable_frame(now, f.reliable);
        break;
      case FrameType::kUnreliable:
        ack_eliciting = true;
        on_unreliable_frame(now, f.unreliable);
        break;
      case FrameType::kMaxData:
        ack_eliciting = true;
        peer_max_data_ = std::max(peer_max_data_, f.max_data.max);
        break;
      case FrameType::kMaxLaneData: {
        ack_eliciting = true;
        Lane& l = lane(f.max_lane_data.lane);
        l.peer_max = std::max(l.peer_max, f.max_lane_data.max);
        break;
      }
      case FrameType::kAckFrequency:
        ack_eliciting = true;
        if (f.ack_frequency.sequence > peer_ack_frequency_seq_) {
          peer_ack_frequency_seq_ = f.ack_frequency.sequence;
          ack_threshold_ = uint32_t(f.ack_frequency.threshold);
        }
        break;
      case FrameType::kClose: {
        uint32_t reason = f.close.reason;
        if (reason == 0) reason = uint32_t(EndReason::kMiscGeneric);
        enter_closed(reason, std::string(f.close.debug), now, false);
        return;
      }
    }
    if (finished_ || phase_ == Phase::kClosed || phase_ == Phase::kDraining) return;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Acknowledgements and loss detection (RFC 9002)

Duration Connection::pto_duration() const {
  Duration base = rtt_.pto(cfg_.max_ack_delay);
  Duration d = base * (int64_t{1} << std::min<uint32_t>(pto_count_, 16));
  return std::max(base, std::min(d, cfg_.max_probe_timeout));
}

void Connection::on_ack_frame(Instant now, const AckFrame& f) {
  if (f.range_count == 0) return;
  uint64_t largest = f.ranges[0].largest;
  if (largest >= next_pn_) {
    protocol_violation("acknowledgement of a packet never sent", now);
    return;
  }
  ack_in_flight_before_ = bytes_in_flight_;
  SentPacket* largest_sp = sent_.find(largest);
  bool rtt_candidate =
      largest_sp && largest_sp->status == SentPacket::Status::kInFlight && largest_sp->ack_eliciting;
  Instant largest_sent = rtt_candidate ? largest_sp->time_sent : Instant{};
  bool newly_acked = false;
  for (size_t i = 0; i < f.range_count; ++i) {
    const PacketRange& range = f.ranges[i];
    if (sent_.empty() || range.largest < sent_.first_pn()) continue;
    uint64_t lo = std::max(range.smallest, sent_.first_pn());
    for (uint64_t pn = lo; pn <= range.largest; ++pn) {
      SentPacket* sp = sent_.find(pn);
      if (!sp) break;
      if (sp->status == SentPacket::Status::kLost) {
        // Declared lost, yet it arrived: the path reorders. Tolerate that much reordering from now on (as
        // RACK and QUIC stacks do) instead of retransmitting and backing off for it again and again.
        sp->status = SentPacket::Status::kAcked;
        ++stats_.packets_lost_spurious;
        for (uint8_t r = 0; r < sp->record_count; ++r) {  // its data need not go again (if not sent yet)
          const SentRecord& rec = sp->records[r];
          if (rec.kind == SentRecord::kReliable && rec.lane < lanes_.size() && lanes_[rec.lane]) {
            lanes_[rec.lane]->send.on_acked(rec.offset, rec.length);
          }
        }
        reorder_threshold_ =
            std::max(reorder_threshold_, std::min<uint64_t>(largest - pn + 1, kMaxReorderThreshold));
        reorder_time_eighths_ = std::min<uint32_t>(reorder_time_eighths_ + 2, 16);
        if (sp->counted_in_episode && ++episode_spurious_ == episode_lost_) cc_.undo_last_reduction();
        continue;
      }
      if (sp->status != SentPacket::Status::kInFlight) continue;
      on_packet_acked(now, *sp);
      newly_acked = true;
    }
  }
  if (!any_acked_ || largest > largest_acked_) largest_acked_ = largest;
  any_acked_ = true;
  if (rtt_candidate) {
    Duration ack_delay = microseconds(int64_t(std::min<uint64_t>(f.ack_delay_us, 60'000'000)));
    rtt_.on_sample(now - largest_sent, ack_delay, cfg_.max_ack_delay);
  }
  if (newly_acked) {
    pto_count_ = 0;
    detect_lost(now);
    sent_.trim(now - std::max(rtt_.smoothed(), rtt_.latest()) * 2);
  }
  if (phase_ == Phase::kLinger) maybe_finish_linger(now);
}

void Connection::on_packet_acked(Instant now, SentPacket& sp) {
  sp.status = SentPacket::Status::kAcked;
  if (sp.in_flight) {
    bytes_in_flight_ -= sp.size;
    if (sp.ack_eliciting) --ack_eliciting_in_flight_;
    if (!sp.mtu_probe) cc_.on_ack(sp.size, sp.time_sent, now, rtt_.min(), ack_in_flight_before_);
  }
  loss_ewma_ *= 0.99;
  if (keys_ && sp.pn >= keys_->send_phase_first_pn) keys_->send_phase_acked = true;
  for (uint8_t i = 0; i < sp.record_count; ++i) {
    const SentRecord& r = sp.records[i];
    if (r.kind == SentRecord::kReliable && r.lane < lanes_.size() && lanes_[r.lane]) {
      lanes_[r.lane]->send.on_acked(r.offset, r.length);
    }
  }
  if (sp.mtu_probe) {
    mtu_probe_low_ = sp.size;
    mtu_probe_size_ = 0;
    mtu_probe_failures_ = 0;
    if (sp.size > packet_size_) {
      packet_size_ = sp.size;
      cc_.set_max_datagram_size(packet_size_);
    }
  }
}

void Connection::on_packet_lost(Instant now, SentPacket& sp) {
  sp.status = SentPacket::Status::kLost;
  sp.lost_at = now;
  if (sp.in_flight) {
    bytes_in_flight_ -= sp.size;
    if (sp.ack_eliciting) --ack_eliciting_in_flight_;
  }
  if (sp.mtu_probe) {
    // A probe too large for the path is not congestion: narrow the search instead.
    mtu_probe_size_ = 0;
    if (++mtu_probe_failures_ >= 3) {
      mtu_probe_high_ = sp.size - 1;
      mtu_probe_failures_ = 0;
    }
    return;
  }
  ++stats_.packets_lost;
  loss_ewma_ = loss_ewma_ * 0.99 + 0.01;
  if (sp.has_max_data) max_data_dirty_ = true;
  if (sp.has_ack_frequency) ack_frequency_dirty_ = true;
  if (sp.has_close && (phase_ == Phase::kDraining)) close_pending_ = true;
  for (uint8_t i = 0; i < sp.record_count; ++i) {
    const SentRecord& r = sp.records[i];
    if (r.lane >= lanes_.size() || !lanes_[r.lane]) continue;
    Lane& l = *lanes_[r.lane];
    if (r.kind == SentRecord::kReliable) {
      l.send.on_lost(r.offset, r.length);
    } else {
      l.max_dirty = true;
    }
  }
  wants_transmit_ = true;
}

void Connection::detect_lost(Instant now) {
  loss_time_ = kNever;
  if (!any_acked_) return;
  Duration loss_delay = std::max<Duration>(
      std::max(rtt_.latest(), rtt_.smoothed()) * reorder_time_eighths_ / 8, RttEstimator::kGranularity);
  Instant lost_before = now - loss_delay;
  Instant first_lost = kNever, last_lost = Instant::min();
  bool any_lost = false;
  for (SentPacket& sp : sent_) {
    if (sp.pn >= largest_acked_) break;
    if (sp.status != SentPacket::Status::kInFlight) continue;
    if (sp.pn + reorder_threshold_ <= largest_acked_ || sp.time_sent <= lost_before) {
      bool counts = sp.ack_eliciting && !sp.mtu_probe;
      on_packet_lost(now, sp);
      if (counts) {
        any_lost = true;
        first_lost = std::min(first_lost, sp.time_sent);
        last_lost = std::max(last_lost, sp.time_sent);
      }
    } else {
      loss_time_ = std::min(loss_time_, sp.time_sent + loss_delay);
    }
  }
  if (!any_lost) return;
  if (!cc_.in_recovery(last_lost)) {
    // A new loss episode: the undo bookkeeping starts over with the packets declared lost now.
    episode_lost_ = 0;
    episode_spurious_ = 0;
    for (SentPacket& sp : sent_)
      sp.counted_in_episode = false;
  }
  for (SentPacket& sp : sent_) {
    if (sp.status == SentPacket::Status::kLost && sp.lost_at == now && !sp.counted_in_episode) {
      sp.counted_in_episode = true;
      ++episode_lost_;
    }
  }
  cc_.on_congestion_event(last_lost, now);
  if (rtt_.has_sample() && last_lost - first_lost > rtt_.pto(cfg_.max_ack_delay) * 3) {
    cc_.on_persistent_congestion();
  }
}

void Connection::on_path_restored(Instant now) {
  (void)now;
  if (!keys_ || (phase_ != Phase::kConnected && phase_ != Phase::kLinger)) return;
  pto_count_ = 0;
  if (ack_eliciting_in_flight_ > 0) {
    probes_to_send_ = 2;
    wants_transmit_ = true;
  }
}

Instant Connection::loss_or_pto_deadline() const {
  if (loss_time_ != kNever) return loss_time_;
  if (ack_eliciting_in_flight_ == 0 || !keys_) return kNever;
  return last_ack_eliciting_sent_ + pto_duration();
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

// ---------------------------------------------------------------------------------------------------------
// Sending

size_t Connection::poll_transmit(Instant now, uint8_t* out, size_t cap) {
  if (finished_) return 0;
  if (size_t n = build_handshake_packet(now, out, cap)) return n;
  if (!keys_ || phase_ == Phase::kHandshake || phase_ == Phase::kClosed) return 0;
  size_t n = build_data_packet(now, out, cap);
  if (n > 0 && phase_ == Phase::kDraining && released_ && drain_until_ == kNever) {
    drain_until_ = now + pto_duration() * 3;
  }
  return n;
}

size_t Connection::seal(Instant now, uint8_t* out, size_t payload_len) {
  maybe_update_keys(now);
  Keys& k = *keys_;
  DataHeader h;
  h.key_phase = k.send_phase;
  h.receiver_id = peer_id_;
  h.truncated_pn = uint32_t(next_pn_);
  encode_data_header(h, out);
  size_t sealed =
      k.send.seal(next_pn_, out, kDataHeaderSize, out + kDataHeaderSize, payload_len, out + kDataHeaderSize);
  ++k.packets_in_phase;
  return kDataHeaderSize + sealed;
}

void Connection::maybe_update_keys(Instant now) {
  Keys& k = *keys_;
  if (phase_ != Phase::kConnected || k.send_phase != k.recv_phase || !k.send_phase_acked) return;
  if (k.packets_in_phase < cfg_.key_update_packets && now - k.phase_started < cfg_.key_update_interval)
    return;
  k.send_secret = next_key_secret(k.send_secret);
  k.send = crypto::Aead(k.alg, k.send_secret);
  k.send_phase = !k.send_phase;
  k.send_phase_first_pn = next_pn_;
  k.send_phase_acked = false;
  k.packets_in_phase = 0;
  k.phase_started = now;
  ++stats_.key_updates;
}

size_t Connection::build_data_packet(Instant now, uint8_t* out, size_t cap) {
  size_t limit = std::min(cap, packet_size_);
  bool probing_mtu = false;
  if (phase_ == Phase::kConnected && mtu_probe_size_ == 0 && mtu_probe_high_ > mtu_probe_low_ + 16 &&
      cap >= mtu_probe_high_ && bytes_in_flight_ + mtu_probe_high_ <= cc_.window()) {
    // Search between the largest size known to work and the smallest known to fail: try the top first
    // (most paths either carry it or not at all), then halve.
    size_t size = mtu_probe_failures_ == 0 && mtu_probe_high_ == std::max<size_t>(cfg_.max_packet_size, 1200)
                      ? mtu_probe_high_
                      : (mtu_probe_low_ + mtu_probe_high_ + 1) / 2;
    limit = size;
    probing_mtu = true;
  }
  if (limit < kDataHeaderSize + kAeadTagSize + 32) return 0;
  if (!address_validated_ && unvalidated_sent_ + limit > 3 * unvalidated_received_) return 0;

  bool probe = probes_to_send_ > 0;
  bool cc_ok = probe || bytes_in_flight_ + limit <= cc_.window();
  bool pace_ok = true;
  if (!probe && cfg_.pacing && cc_ok) {
    Instant t = pacer_.next_send_time(now, cc_.window(), rtt_.smoothed(), limit, cc_.in_slow_start());
    if (t > now) {
      pace_ok = false;
      send_wakeup_ = t;
    }
  }
  bool keepalive_due = phase_ == Phase::kConnected &&
                       now >= std::max(last_received_, last_keepalive_sent_) + keepalive_interval();
  bool ack_due = ack_pending_ && (ack_immediate_ || now >= ack_deadline_);
  bool control = max_data_dirty_ || lane_max_dirty() || close_pending_;
  bool data = phase_ != Phase::kDraining && has_sendable_data(now);
  bool may_send_more = (cc_ok && pace_ok) || probe;
  if (!(ack_due || keepalive_due || probing_mtu || ((data || control || probe) && may_send_more))) {
    if (data && !cc_ok) send_wakeup_ = kNever;  // an ack will open the window
    return 0;
  }
  if (probing_mtu && !may_send_more) {
    probing_mtu = false;
    limit = std::min(cap, packet_size_);
  }

  Writer w(out + kDataHeaderSize, limit - kDataHeaderSize - kAeadTagSize);
  SentPacket sp;
  sp.pn = next_pn_;
  sp.time_sent = now;
  bool ack_eliciting = false;
  if (ack_pending_) {
    AckFrame f;
    received_pns_.fill_ack(f, now);
    if (w.remaining() >= ack_frame_size(f)) {
      encode_ack(w, f);
      ack_pending_ = false;
      ack_immediate_ = false;
      ack_eliciting_unacked_ = 0;
      ack_deadline_ = kNever;
    }
  }
  if (close_pending_ && phase_ == Phase::kDraining) {
    encode_close(w, end_reason_, end_debug_);
    close_pending_ = false;
    ++close_sent_count_;
    sp.has_close = true;
    ack_eliciting = true;
  } else if (probing_mtu) {
    encode_ping(w);
    encode_padding(w, w.remaining());
    sp.mtu_probe = true;
    mtu_probe_size_ = limit;
    ack_eliciting = true;
  } else if (may_send_more) {
    uint32_t ack_threshold = desired_ack_threshold();
    if (ack_threshold != ack_frequency_requested_ || ack_frequency_dirty_) {
      encode_ack_frequency(w, ++ack_frequency_seq_, ack_threshold);
      ack_frequency_requested_ = ack_threshold;
      ack_frequency_dirty_ = false;
      sp.has_ack_frequency = true;
      ack_eliciting = true;
    }
    if (max_data_dirty_) {
      encode_max_data(w, local_max_data_);
      max_data_dirty_ = false;
      sp.has_max_data = true;
      ack_eliciting = true;
    }
    for (uint32_t i = 0; i < lanes_.size(); ++i) {
      Lane* l = lanes_[i].get();
      if (!l || !l->max_dirty || w.remaining() < 16) continue;
      if (!sp.add_record({SentRecord::kMaxLaneData, i, 0, 0})) break;
      encode_max_lane_data(w, i, l->local_max);
      l->max_dirty = false;
      ack_eliciting = true;
    }
    if (data) ack_eliciting |= fill_stream_frames(now, w, sp);
  }
  if (!ack_eliciting && (probe || keepalive_due)) {
    encode_ping(w);
    ack_eliciting = true;
  }
  if (w.size() == 0) return 0;
  if (keepalive_due) last_keepalive_sent_ = now;
  if (probe) --probes_to_send_;

  size_t size = seal(now, out, w.size());
  sp.size = uint32_t(size);
  sp.ack_eliciting = ack_eliciting;
  sp.in_flight = ack_eliciting;
  ++next_pn_;
  ++stats_.packets_sent;
  stats_.bytes_sent += size;
  if (!address_validated_) unvalidated_sent_ += size;
  if (rate_window_start_ == Instant::min()) rate_window_start_ = now;
  rate_window_bytes_ += size;
  if (now - rate_window_start_ >= milliseconds(100)) {
    double secs = std::chrono::duration<double>(now - rate_window_start_).count();
    rate_ewma_ =
        rate_ewma_ == 0 ? rate_window_bytes_ / secs : rate_ewma_ * 0.5 + 0.5 * rate_window_bytes_ / secs;
    rate_window_start_ = now;
    rate_window_bytes_ = 0;
  }
  if (ack_eliciting) {
    // The idle timer restarts when we send after receiving (RFC 9000 §10.1).
    if (last_ack_eliciting_sent_ == kNever || last_ack_eliciting_sent_ < last_received_) {
      idle_deadline_ = now + std::max<Duration>(cfg_.idle_timeout, pto_duration() * 3);
    }
    last_ack_eliciting_sent_ = now;
    bytes_in_flight_ += size;
    ++ack_eliciting_in_flight_;
    if (cfg_.pacing && !probe) pacer_.on_sent(now, size, cc_.window(), rtt_.smoothed(), cc_.in_slow_start());
  } else {
    sp.status = SentPacket::Status::kAcked;  // nothing to track, but packet numbers stay contiguous
  }
  sent_.push(sp);
  return size;
}

Duration Connection::keepalive_interval() const {
  // A keepalive interval longer than the idle timeout would let a healthy idle connection time out.
  return std::min<Duration>(cfg_.keepalive_interval, cfg_.idle_timeout / 2);
}

uint32_t Connection::desired_ack_threshold() const {
  // Enough acknowledgements per round trip to clock the sender (window / threshold >= ~20), few enough
  // that they cost little: 2 for small windows, 4, then 10 from about 100 packets in flight.
  uint32_t base = std::max<uint32_t>(cfg_.ack_eliciting_threshold, 1);
  if (cfg_.max_ack_threshold_request <= base) return base;
  uint64_t window_packets = cc_.window() / packet_size_;
  uint32_t t = window_packets >= 100 ? 10 : window_packets >= 40 ? 4 : base;
  return std::clamp<uint32_t>(t, base, cfg_.max_ack_threshold_request);
}

bool Connection::lane_max_dirty() const {
  for (const auto& l : lanes_) {
    if (l && l->max_dirty) return true;
  }
  return false;
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

}  // namespace peerlink::protocol
