// Connection: acknowledgements, RTT samples, loss detection and probe timeouts (RFC 9002), and what they
// tell congestion control and path MTU probing.
#include "transport/protocol/connection.hpp"

#include <algorithm>

#include "transport/protocol/connection_keys.hpp"
#include "transport/protocol/lane.hpp"

namespace peerlink::protocol {

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
  const uint64_t delivered_before = delivered_;
  rate_sample_ = RateSample{};
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
        if (sp->in_flight && !sp->mtu_probe) {  // it did arrive
          delivered_ += sp->size;
          spurious_bytes_ += sp->size;
        }
        for (uint8_t r = 0; r < sp->record_count; ++r) {  // its data need not go again (if not sent yet)
          const SentRecord& rec = sp->records[r];
          if (rec.kind == SentRecord::kReliable && rec.lane < lanes_.size() && lanes_[rec.lane]) {
            lanes_[rec.lane]->send.on_acked(rec.offset, rec.length);
          }
        }
        reorder_threshold_ =
            std::max(reorder_threshold_, std::min<uint64_t>(largest - pn + 1, kMaxReorderThreshold));
        reorder_time_eighths_ = std::min<uint32_t>(reorder_time_eighths_ + 2, 16);
        last_reordered_ = now;
        if (sp->counted_in_episode && ++episode_spurious_ == episode_lost_) cc_.undo_last_reduction();
        continue;
      }
      if (sp->status != SentPacket::Status::kInFlight) continue;
      // Acknowledged only after a later packet was: it arrived out of order.
      if (any_acked_ && pn < largest_acked_ && sp->ack_eliciting) last_reordered_ = now;
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
    if (cc_.algorithm() == CongestionAlgorithm::kBbr) {
      AckEvent e;
      e.now = now;
      e.sample = rate_sample_;
      if (e.sample.valid) {
        e.sample.delivered = delivered_ - e.sample.prior_delivered;
        // An interval shorter than the path's round trip comes from compressed acknowledgements: it would
        // overstate the rate.
        if (rtt_.has_sample() && e.sample.interval < rtt_.min()) e.sample.valid = false;
      }
      e.delivered_total = delivered_;
      e.newly_acked = delivered_ - delivered_before;
      e.newly_lost = lost_bytes_;
      lost_bytes_ = 0;
      e.newly_spurious = spurious_bytes_;
      spurious_bytes_ = 0;
      e.bytes_in_flight_before = ack_in_flight_before_;
      if (rtt_candidate) e.rtt = now - largest_sent;
      cc_.on_ack_event(e);
    }
    sent_.trim(now - std::max(rtt_.smoothed(), rtt_.latest()) * 2);
  }
  if (phase_ == Phase::kLinger) maybe_finish_linger(now);
}

void Connection::on_packet_acked(Instant now, SentPacket& sp) {
  sp.status = SentPacket::Status::kAcked;
  if (sp.in_flight) {
    bytes_in_flight_ -= sp.size;
    if (sp.ack_eliciting) --ack_eliciting_in_flight_;
    if (!sp.mtu_probe) {
      cc_.on_ack(sp.size, sp.time_sent, now, rtt_.min(), ack_in_flight_before_);
      sample_delivery(now, sp);
    }
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

// One acknowledged packet's part of the ACK frame's rate sample: the newest packet (by the delivered count
// it saw when sent) sets the sample's interval.
void Connection::sample_delivery(Instant now, const SentPacket& sp) {
  delivered_ += sp.size;
  delivered_time_ = now;
  if (app_limited_until_ != 0 && delivered_ > app_limited_until_) app_limited_until_ = 0;
  if (rate_sample_.valid &&
      (sp.delivered < rate_sample_.prior_delivered ||
       (sp.delivered == rate_sample_.prior_delivered && sp.time_sent < rate_sample_.send_time)))
    return;  // ranges come newest first: an older packet must not replace the newest
  rate_sample_.valid = true;
  rate_sample_.send_time = sp.time_sent;
  rate_sample_.prior_delivered = sp.delivered;
  rate_sample_.app_limited = sp.app_limited;
  rate_sample_.interval = std::max(sp.time_sent - sp.first_sent_time, now - sp.delivered_time);
  first_sent_time_ = sp.time_sent;
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
  if (sp.in_flight) lost_bytes_ += sp.size;
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
  if (last_reordered_ != kNever && now - last_reordered_ >= kReorderMemory) {
    reorder_threshold_ = kInitialReorderThreshold;
    reorder_time_eighths_ = kInitialReorderTimeEighths;
  }
  Duration loss_delay = std::max<Duration>(
      std::max(rtt_.latest(), rtt_.smoothed()) * reorder_time_eighths_ / 8, RttEstimator::kGranularity);
  if (reorder_time_eighths_ > kInitialReorderTimeEighths && last_reordered_ != kNever &&
      now - last_reordered_ < std::max<Duration>(seconds(1), rtt_.smoothed() * 16)) {
    // The path reorders, and did lately: on a jittery path the RTT varies by more than the RTT itself,
    // and a packet is only late, not lost, until it is later than the RTT's usual spread allows.
    loss_delay = std::max(loss_delay, rtt_.smoothed() + rtt_.variance() * 4);
  }
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

}  // namespace peerlink::protocol
