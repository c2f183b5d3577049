// Connection: lanes, the application's send and receive paths, scheduling and flow control.
#include <algorithm>

#include "transport/protocol/connection.hpp"
#include "transport/protocol/connection_keys.hpp"
#include "transport/protocol/lane.hpp"

namespace peerlink::protocol {

namespace {
constexpr size_t kMinFrameRoom = 24;  // below this a packet is full
constexpr size_t kMaxReliableHeader = 1 + 2 + 8 + 4;
constexpr size_t kMessageOverhead = 48;  // bookkeeping charged per queued message
}  // namespace

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

uint64_t Connection::queued_send_bytes() const {
  uint64_t q = 0;
  for (const auto& l : lanes_) {
    if (l) q += l->queued_bytes();
  }
  return q + queued_message_overhead_;
}

SendResult Connection::send(const uint8_t* data, size_t len, uint32_t flags, uint32_t lane_index,
                            Instant now) {
  if (released_ || phase_ == Phase::kLinger || phase_ == Phase::kDraining || phase_ == Phase::kClosed ||
      finished_) {
    return SendResult::kInvalidState;
  }
  if (lane_index >= lane_configs_.size()) return SendResult::kInvalidLane;
  bool reliable = flags & send_flags::kReliable;
  if (reliable ? len > cfg_.max_message_size : len > kMaxUnreliableMessageSize) {
    return SendResult::kMessageTooLarge;
  }
  if (!reliable && len == 0) {
    // The wire format has no empty unreliable fragment (PROTOCOL.md 5.6: length >= 1). Queued, it would
    // fail to encode and spoil the Writer, silently losing the other frames of its packet.
    ++stats_.unreliable_dropped;
    return SendResult::kDropped;
  }
  if (queued_send_bytes() + len + kMessageOverhead > cfg_.send_buffer_limit)
    return SendResult::kLimitExceeded;
  Lane& l = lane(lane_index);
  if (reliable) {
    l.send.push_message(data, len);
    if (l.reliable_unsent_since == kNever) l.reliable_unsent_since = now;
  } else {
    if (flags & send_flags::kNoDelay) {
      bool can_go_now = phase_ == Phase::kConnected && l.unreliable.empty() &&
                        bytes_in_flight_ + len + 64 <= cc_.window() &&
                        (send_wakeup_ == kNever || send_wakeup_ <= now);  // not held back by the pacer
      if (!can_go_now) {
        ++stats_.unreliable_dropped;
        return SendResult::kDropped;
      }
    }
    UnreliableOutgoing m;
    m.data.assign(data, data + len);
    m.id = next_unreliable_id_++;
    m.queued = now;
    l.unreliable.push_back(std::move(m));
    l.unreliable_bytes += len;
    queued_message_overhead_ += kMessageOverhead;
  }
  if (unsent_since_ == kNever) unsent_since_ = now;
  if (flags & (send_flags::kNoNagle | send_flags::kNoDelay)) flush_requested_ = true;
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

bool Connection::fill_stream_frames(Instant now, Writer& w, SentPacket& sp) {
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
      w.put_u8(uint8_t(FrameType::kReliable));
      w.put_varint(index);
      w.put_varint(offset);
      w.put_varint(len);
      uint8_t* dst = w.put_uninit(len);
      if (!dst) break;
      l->send.copy_out(offset, len, dst);
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

std::string Connection::debug_string() const {
  std::string s = "peer_max_data " + std::to_string(peer_max_data_) + " sent_new " +
                  std::to_string(sent_new_total_) + " local_max_data " + std::to_string(local_max_data_) +
                  " consumed " + std::to_string(consumed_total_) + " received_total " +
                  std::to_string(received_total_) + " unsent_since_set " +
                  std::to_string(unsent_since_ != kNever) + " flush " + std::to_string(flush_requested_) +
                  " probes " + std::to_string(probes_to_send_) + " pto_count " + std::to_string(pto_count_);
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

// ---------------------------------------------------------------------------------------------------------
// Receiving

void Connection::on_reliable_frame(Instant now, const ReliableFrame& f) {
  Lane& l = lane(f.lane);
  uint64_t before = l.recv.highest_offset();
  uint64_t end = f.offset + f.length;
  if (end > before) {
    received_total_ += end - before;
    if (received_total_ > local_max_data_) {
      protocol_violation("connection flow-control limit exceeded", now);
      return;
    }
  }
  uint64_t consumed_before = l.recv.consumed_offset();
  uint32_t lane_index = f.lane;
  auto r = l.recv.on_data(
      f.offset, f.data, f.length, l.local_max, cfg_.max_message_size,
      [this, lane_index](std::vector<uint8_t>&& m) { deliver(lane_index, true, std::move(m)); });
  if (r == ReliableRecvStream::Result::kFlowControlViolation) {
    protocol_violation("lane flow-control limit exceeded", now);
    return;
  }
  if (r == ReliableRecvStream::Result::kMessageTooLarge) {
    protocol_violation("reliable message above the size limit", now);
    return;
  }
  consumed_total_ += l.recv.consumed_offset() - consumed_before;
  update_receive_windows();
}

void Connection::on_unreliable_frame(Instant now, const UnreliableFrame& f) {
  if (f.lane >= kMaxLanes) return;
  if (!reassembly_) reassembly_ = std::make_unique<UnreliableReassembly>();
  std::vector<uint8_t> data;
  uint32_t lane_index = 0;
  if (reassembly_->add(now, f, data, lane_index)) deliver(lane_index, false, std::move(data));
  if (!reassembly_->empty()) {
    reassembly_->expire(now, std::max<Duration>(rtt_.smoothed() * 4, milliseconds(200)));
  }
}

void Connection::deliver(uint32_t lane_index, bool reliable, std::vector<uint8_t>&& data) {
  if (released_) return;  // closing: nobody will read it
  if (!reliable && received_bytes_queued_ + data.size() > cfg_.receive_queue_limit) {
    // Unreliable messages have no flow control: an application that does not read loses them instead of
    // letting the queue grow without bound.
    ++stats_.unreliable_dropped;
    return;
  }
  Lane& l = lane(lane_index);
  ReceivedMessage m;
  m.connection = local_id_;
  m.lane = lane_index;
  m.reliable = reliable;
  m.number = reliable ? ++l.reliable_received : ++l.unreliable_received;
  m.data = std::move(data);
  received_bytes_queued_ += m.data.size();
  ++stats_.messages_received;
  received_.push_back(std::move(m));
}

bool Connection::pop_message(ReceivedMessage& out) {
  if (received_.empty()) return false;
  out = std::move(received_.front());
  received_.pop_front();
  received_bytes_queued_ -= out.data.size();
  update_receive_windows();
  return true;
}

void Connection::update_receive_windows() {
  // Credit grows as the application reads; an application that stops reading stops the peer.
  if (received_bytes_queued_ >= cfg_.receive_queue_limit) return;
  for (auto& slot : lanes_) {
    Lane* l = slot.get();
    if (!l) continue;
    uint64_t consumed = l->recv.consumed_offset();
    if (l->local_max - consumed < cfg_.lane_receive_window / 2) {
      l->local_max = consumed + cfg_.lane_receive_window;
      l->max_dirty = true;
      wants_transmit_ = true;
    }
  }
  if (local_max_data_ - consumed_total_ < cfg_.connection_receive_window / 2) {
    local_max_data_ = consumed_total_ + cfg_.connection_receive_window;
    max_data_dirty_ = true;
    wants_transmit_ = true;
  }
}

}  // namespace peerlink::protocol
