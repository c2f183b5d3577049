// Connection: the send path, in the order it runs: send() queues a message on its lane; poll_transmit()
// decides whether a packet may leave (congestion window, pacer, Nagle, probes), writes its frames
// (acknowledgement, control, then stream data picked across lanes by priority and weight) and seals it.
#include "transport/protocol/connection.hpp"

#include <algorithm>

#include "transport/protocol/connection_keys.hpp"
#include "transport/protocol/lane.hpp"

namespace peerlink::protocol {

namespace {
constexpr size_t kMinFrameRoom = 24;  // below this a packet is full
constexpr size_t kMaxReliableHeader = 1 + 2 + 8 + 4;
constexpr size_t kMessageOverhead = 48;  // bookkeeping charged per queued message
}  // namespace

uint64_t Connection::queued_send_bytes() const {
  uint64_t q = 0;
  for (const auto& l : lanes_) {
    if (l) q += l->queued_bytes();
  }
  return q + queued_message_overhead_;
}

bool Connection::has_send_room(size_t len) const {
  return queued_send_bytes() + len + kMessageOverhead <= cfg_.send_buffer_limit;
}

SendResult Connection::send(const uint8_t* data, size_t len, uint32_t flags, uint32_t lane, Instant now) {
  return queue_message(data, len, nullptr, flags, lane, now);
}

SendResult Connection::send(std::vector<uint8_t>&& message, uint32_t flags, uint32_t lane, Instant now) {
  return queue_message(message.data(), message.size(), &message, flags, lane, now);
}

// data/len is the message; owned, if given, holds it and may be moved from, but only once nothing can
// refuse the message any more.
SendResult Connection::queue_message(const uint8_t* data, size_t len, std::vector<uint8_t>* owned,
                                     uint32_t flags, uint32_t lane_index, Instant now) {
  if (released_ || phase_ == Phase::kLinger || phase_ == Phase::kDraining || phase_ == Phase::kClosed ||
      finished_) {
    return SendResult::kInvalidState;
  }
  if (!valid_send_flags(flags)) return SendResult::kInvalidFlags;
  if (lane_index >= lane_configs_.size()) return SendResult::kInvalidLane;
  const bool reliable = !(flags & send_flags::kUnreliable);
  if (reliable ? len > cfg_.max_message_size : len > kMaxUnreliableMessageSize) {
    return SendResult::kMessageTooLarge;
  }
  if (!reliable && len == 0) {
    // The wire format has no empty unreliable fragment (PROTOCOL.md 5.6: length >= 1). Queued, it would
    // fail to encode and spoil the Writer, silently losing the other frames of its packet.
    ++stats_.unreliable_dropped;
    return SendResult::kDropped;
  }
  if (!has_send_room(len)) return SendResult::kLimitExceeded;
  Lane& l = lane(lane_index);
  if (reliable) {
    if (owned) {
      l.send.push_message(std::move(*owned));
    } else {
      l.send.push_message(data, len);
    }
    if (l.reliable_unsent_since == kNever) l.reliable_unsent_since = now;
  } else {
    if (flags & send_flags::kDropIfBlocked) {
      bool can_go_now = phase_ == Phase::kConnected && l.unreliable.empty() &&
                        bytes_in_flight_ + len + 64 <= cc_.window() &&
                        (send_wakeup_ == kNever || send_wakeup_ <= now);  // not held back by the pacer
      if (!can_go_now) {
        ++stats_.unreliable_dropped;
        return SendResult::kDropped;
      }
    }
    UnreliableOutgoing m;
    if (owned) {
      m.data = std::move(*owned);
    } else {
      m.data.assign(data, data + len);
    }
    m.id = next_unreliable_id_++;
    m.queued = now;
    l.unreliable.push_back(std::move(m));
    l.unreliable_bytes += len;
    queued_message_overhead_ += kMessageOverhead;
  }
  if (unsent_since_ == kNever) unsent_since_ = now;
  if (sends_at_once(flags)) flush_requested_ = true;
  ++stats_.messages_sent;
  wants_transmit_ = true;
  return SendResult::kOk;
}

uint64_t Connection::new_data_limit(const Lane& l) const {
  uint64_t conn_credit = peer_max_data_ > sent_new_total_ ? peer_max_data_ - sent_new_total_ : 0;
  return std::min(l.peer_max, l.send.next_offset() + conn_credit);
}

bool Connection::lane_has_data(const Lane& l, bool allow_new) const {
  if (l.send.has_retransmit() || (allow_new && l.has_unreliable())) return true;
  return allow_new && l.send.unsent_bytes() > 0 && l.send.next_offset() < new_data_limit(l);
}

bool Connection::flow_control_blocked() const {
  for (const auto& l : lanes_) {
    if (l && l->send.unsent_bytes() > 0 && l->send.next_offset() >= new_data_limit(*l)) return true;
  }
  return false;
}

bool Connection::nagle_allows(Instant now) const {
  if (flush_requested_ || unsent_since_ == kNever || now >= unsent_since_ + cfg_.nagle_delay) return true;
  uint64_t unsent = 0;
  for (const auto& l : lanes_) {
    if (l) unsent += l->send.unsent_bytes() + l->unreliable_bytes;
  }
  return unsent >= packet_size_ - kDataHeaderSize - kAeadTagSize - kMaxReliableHeader;
}

bool Connection::has_sendable_data(Instant now) const {
  bool allow_new = nagle_allows(now);
  for (const auto& l : lanes_) {
    if (l && lane_has_data(*l, allow_new)) return true;
  }
  if (!allow_new && unsent_since_ != kNever) {
    // Data waits for Nagle: wake up when its delay ends.
    send_wakeup_ = std::min(send_wakeup_, unsent_since_ + cfg_.nagle_delay);
  }
  return false;
}

Lane* Connection::pick_lane(bool allow_new) {
  Lane* best = nullptr;
  for (auto& slot : lanes_) {
    Lane* l = slot.get();
    if (!l) continue;
    if (!lane_has_data(*l, allow_new)) {
      l->active = false;
      continue;
    }
    if (!l->active) {
      // A lane waking up joins at the current virtual time instead of claiming past idle time.
      l->active = true;
      l->vtime = std::max(l->vtime, vtime_);
    }
    if (!best || l->config.priority < best->config.priority ||
        (l->config.priority == best->config.priority && l->vtime < best->vtime)) {
      best = l;
    }
  }
  if (best) vtime_ = best->vtime;
  return best;
}

bool Connection::fill_stream_frames(Instant now, Writer& w, SentPacket& sp, PacketSources& sources) {
  bool wrote = false;
  bool allow_new = nagle_allows(now);
  size_t payload_capacity = packet_size_ - kDataHeaderSize - kAeadTagSize;
  while (w.remaining() >= kMinFrameRoom) {
    Lane* l = pick_lane(allow_new);
    if (!l) break;
    uint32_t index = 0;
    while (lanes_[index].get() != l)
      ++index;
    bool reliable_ready = l->send.has_retransmit() ||
                          (l->send.unsent_bytes() > 0 && l->send.next_offset() < new_data_limit(*l));
    bool take_unreliable = l->has_unreliable() && allow_new &&
                           (!reliable_ready || l->send.has_retransmit() == false) &&
                           (!reliable_ready || l->unreliable.front().queued <= l->reliable_unsent_since);
    if (!take_unreliable) {
      if (sp.record_count == SentPacket::kMaxRecords) break;
      uint64_t offset;
      size_t len;
      if (!l->send.next_segment(w.remaining() - kMaxReliableHeader, allow_new ? new_data_limit(*l) : 0,
                                offset, len)) {
        break;
      }
      bool is_new = offset + len > l->send.next_offset();
      uint8_t* dst = encode_reliable(w, index, offset, len);
      if (!dst) break;
      l->send.gather_out(offset, len, dst, sources);
      if (is_new) {
        sent_new_total_ += offset + len - std::max(offset, l->send.next_offset());
      } else {
        ++stats_.packets_retransmitted;
      }
      l->send.on_sent(offset, len);
      if (l->send.unsent_bytes() == 0) l->reliable_unsent_since = kNever;
      sp.add_record({SentRecord::kReliable, index, uint32_t(len), offset});
      l->vtime += double(len) / l->config.weight;
      wrote = true;
      continue;
    }
    UnreliableOutgoing& m = l->unreliable.front();
    UnreliableFrame f;
    f.lane = index;
    f.message_id = m.id;
    f.total_length = m.data.size();
    f.offset = m.sent;
    f.length = m.data.size() - m.sent;
    size_t header = unreliable_frame_header_size(f);
    if (header + f.length > w.remaining()) {
      // Do not split a message that would fit whole in the next packet.
      if (m.sent == 0 && header + f.length <= payload_capacity && w.size() > 0) break;
      f.length = w.remaining() - header;
      header = unreliable_frame_header_size(f);
      if (header + f.length > w.remaining()) f.length = w.remaining() - header;
    }
    f.data = m.data.data() + m.sent;
    encode_unreliable(w, f);
    m.sent += f.length;
    l->vtime += double(f.length) / l->config.weight;
    wrote = true;
    if (m.sent == m.data.size()) {
      l->unreliable_bytes -= m.data.size();
      l->unreliable.pop_front();
      queued_message_overhead_ -= kMessageOverhead;
    }
  }
  // Everything queued went out: the next message starts a new Nagle period.
  bool unsent_left = false;
  for (const auto& lp : lanes_) {
    if (lp && (lp->send.unsent_bytes() > 0 || lp->has_unreliable())) unsent_left = true;
  }
  if (!unsent_left) {
    unsent_since_ = kNever;
    flush_requested_ = false;
  }
  return wrote;
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

size_t Connection::seal(Instant now, uint8_t* out, size_t payload_len, const PacketSources& sources) {
  maybe_update_keys(now);
  Keys& k = *keys_;
  DataHeader h;
  h.key_phase = k.send_phase;
  h.receiver_id = peer_id_;
  h.truncated_pn = uint32_t(next_pn_);
  encode_data_header(h, out);
  size_t sealed = k.send.seal_gathered(next_pn_, out, kDataHeaderSize, out + kDataHeaderSize, payload_len,
                                       sources.items, sources.count);
  ++k.packets_in_phase;
  return kDataHeaderSize + sealed;
}

void Connection::maybe_update_keys(Instant now) {
  Keys& k = *keys_;
  if (phase_ != Phase::kConnected || k.send_phase != k.recv_phase || !k.send_phase_acked) return;
  if (k.packets_in_phase < cfg_.key_update_packets && now - k.phase_started < cfg_.key_update_interval)
    return;
  k.rotate_send(next_pn_, now);
  ++stats_.key_updates;
}

// A data packet is built in steps: plan_packet decides whether one may leave now and how large it may be;
// write_ack, then write_frames (a CLOSE, an MTU probe, or control frames and stream data); seal; and
// on_packet_sent records it for loss detection, congestion control and the statistics.
size_t Connection::build_data_packet(Instant now, uint8_t* out, size_t cap) {
  PacketPlan plan;
  if (!plan_packet(now, cap, plan)) return 0;
  Writer w(out + kDataHeaderSize, plan.limit - kDataHeaderSize - kAeadTagSize);
  PacketSources sources;  // stream data the seal reads where it lies (fill_stream_frames)
  sources.payload = out + kDataHeaderSize;
  SentPacket sp;
  sp.pn = next_pn_;
  sp.time_sent = now;
  write_ack(now, w);
  bool ack_eliciting = write_frames(now, plan, w, sp, sources);
  if (!ack_eliciting && (plan.probe || plan.keepalive_due)) {
    encode_ping(w);
    ack_eliciting = true;
  }
  if (w.size() == 0) return 0;
  if (plan.keepalive_due) last_keepalive_sent_ = now;
  if (plan.probe) --probes_to_send_;
  size_t size = seal(now, out, w.size(), sources);
  on_packet_sent(now, sp, size, ack_eliciting, plan.probe);
  return size;
}

bool Connection::plan_packet(Instant now, size_t cap, PacketPlan& plan) {
  plan.limit = std::min(cap, packet_size_);
  plan.probing_mtu = false;
  if (phase_ == Phase::kConnected && mtu_probe_size_ == 0 && mtu_probe_high_ > mtu_probe_low_ + 16 &&
      cap >= mtu_probe_high_ && bytes_in_flight_ + mtu_probe_high_ <= cc_.window()) {
    // Search between the largest size known to work and the smallest known to fail: try the top first
    // (most paths either carry it or not at all), then halve.
    plan.limit = mtu_probe_failures_ == 0 && mtu_probe_high_ == std::max<size_t>(cfg_.max_packet_size, 1200)
                     ? mtu_probe_high_
                     : (mtu_probe_low_ + mtu_probe_high_ + 1) / 2;
    plan.probing_mtu = true;
  }
  if (plan.limit < kDataHeaderSize + kAeadTagSize + 32) return false;
  if (!address_validated_ && unvalidated_sent_ + plan.limit > 3 * unvalidated_received_) return false;

  plan.probe = probes_to_send_ > 0;
  const bool cc_ok = plan.probe || bytes_in_flight_ + plan.limit <= cc_.window();
  bool pace_ok = true;
  if (!plan.probe && cfg_.pacing && cc_ok) {
    Instant t = pacer_.next_send_time(now, cc_.pacing_rate(rtt_.smoothed()), plan.limit);
    if (t > now) {
      pace_ok = false;
      send_wakeup_ = t;
    }
  }
  plan.keepalive_due = phase_ == Phase::kConnected &&
                       now >= std::max(last_received_, last_keepalive_sent_) + keepalive_interval();
  const bool ack_due = ack_pending_ && (ack_immediate_ || now >= ack_deadline_);
  const bool control = max_data_dirty_ || lane_max_dirty() || close_pending_;
  plan.data = phase_ != Phase::kDraining && has_sendable_data(now);
  plan.may_send_more = (cc_ok && pace_ok) || plan.probe;
  if (!plan.data && cc_ok && pace_ok && !flow_control_blocked()) {
    // Neither the window, the pacer nor the peer's credit holds data back: there is none (or too little,
    // waiting for Nagle). Rate samples taken until what is in flight now has been delivered show the
    // application's rate, not the path's.
    app_limited_until_ = std::max<uint64_t>(delivered_ + bytes_in_flight_, 1);
  }
  if (!(ack_due || plan.keepalive_due || plan.probing_mtu ||
        ((plan.data || control || plan.probe) && plan.may_send_more))) {
    if (plan.data && !cc_ok) send_wakeup_ = kNever;  // an ack will open the window
    return false;
  }
  if (plan.probing_mtu && !plan.may_send_more) {
    plan.probing_mtu = false;
    plan.limit = std::min(cap, packet_size_);
  }
  return true;
}

void Connection::write_ack(Instant now, Writer& w) {
  if (!ack_pending_) return;
  AckFrame f;
  received_pns_.fill_ack(f, now);
  if (w.remaining() < ack_frame_size(f)) return;
  encode_ack(w, f);
  ack_pending_ = false;
  ack_immediate_ = false;
  ack_eliciting_unacked_ = 0;
  ack_deadline_ = kNever;
}

bool Connection::write_frames(Instant now, const PacketPlan& plan, Writer& w, SentPacket& sp,
                              PacketSources& sources) {
  if (close_pending_ && phase_ == Phase::kDraining) {
    encode_close(w, end_reason_, end_debug_);
    close_pending_ = false;
    ++close_sent_count_;
    sp.has_close = true;
    return true;
  }
  if (plan.probing_mtu) {
    encode_ping(w);
    encode_padding(w, w.remaining());
    sp.mtu_probe = true;
    mtu_probe_size_ = plan.limit;
    return true;
  }
  if (!plan.may_send_more) return false;
  bool ack_eliciting = write_control_frames(w, sp);
  if (plan.data) ack_eliciting |= fill_stream_frames(now, w, sp, sources);
  return ack_eliciting;
}

bool Connection::write_control_frames(Writer& w, SentPacket& sp) {
  bool wrote = false;
  uint32_t ack_threshold = desired_ack_threshold();
  if (ack_threshold != ack_frequency_requested_ || ack_frequency_dirty_) {
    encode_ack_frequency(w, ++ack_frequency_seq_, ack_threshold);
    ack_frequency_requested_ = ack_threshold;
    ack_frequency_dirty_ = false;
    sp.has_ack_frequency = true;
    wrote = true;
  }
  if (max_data_dirty_) {
    encode_max_data(w, local_max_data_);
    max_data_dirty_ = false;
    sp.has_max_data = true;
    wrote = true;
  }
  for (uint32_t i = 0; i < lanes_.size(); ++i) {
    Lane* l = lanes_[i].get();
    if (!l || !l->max_dirty || w.remaining() < 16) continue;
    if (!sp.add_record({SentRecord::kMaxLaneData, i, 0, 0})) break;
    encode_max_lane_data(w, i, l->local_max);
    l->max_dirty = false;
    wrote = true;
  }
  return wrote;
}

void Connection::on_packet_sent(Instant now, SentPacket& sp, size_t size, bool ack_eliciting, bool probe) {
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
    if (!sp.mtu_probe) ++answerable_sent_;
    if (bytes_in_flight_ == 0) first_sent_time_ = delivered_time_ = now;  // a sample starts afresh
    sp.delivered = delivered_;
    sp.delivered_time = delivered_time_;
    sp.first_sent_time = first_sent_time_;
    sp.app_limited = app_limited_until_ != 0;
    bytes_in_flight_ += size;
    ++ack_eliciting_in_flight_;
    if (cfg_.pacing && !probe) pacer_.on_sent(now, size, cc_.pacing_rate(rtt_.smoothed()));
  } else {
    sp.status = SentPacket::Status::kAcked;  // nothing to track, but packet numbers stay contiguous
  }
  sent_.push(sp);
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

}  // namespace peerlink::protocol
