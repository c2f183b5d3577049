// Connection: the receive path of a data packet, in the order it runs: open (decrypt, replay check, the
// peer's key updates), the frames it carries, reliable and unreliable data handed to the receive queue,
// and the credit the application's reads give back to the peer.
#include "transport/protocol/connection.hpp"

#include <algorithm>

#include "transport/protocol/connection_keys.hpp"
#include "transport/protocol/lane.hpp"

namespace peerlink::protocol {

// ---------------------------------------------------------------------------------------------------------
// Receiving

bool Connection::open_packet(Instant now, const DataHeader& h, uint8_t* data, size_t len, uint64_t& pn,
                             size_t& plain_len) {
  if (!keys_) return false;
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
    if (k.send_phase != k.recv_phase) {  // the peer's update: ours follows at once
      k.rotate_send(next_pn_, now);
      ++stats_.key_updates;
    }
  }
  plain_len = body_len - kAeadTagSize;
  return true;
}

void Connection::on_data_packet(Instant now, const PathAddress& from, const DataHeader& header, uint8_t* data,
                                size_t len) {
  if (finished_ || !keys_) return;
  if (!address_validated_) unvalidated_received_ += len;
  if (phase_ == Phase::kHandshake && awaiting_accept_) return;  // XX: not accepted yet; the peer resends
  uint64_t pn;
  size_t plain_len;
  if (!open_packet(now, header, data, len, pn, plain_len)) return;
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
  process_frames(now, data + kDataHeaderSize, plain_len, ack_eliciting);
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

void Connection::process_frames(Instant now, const uint8_t* p, size_t len, bool& ack_eliciting) {
  Reader r(p, len);
  Frame f;
  bool acked = false;
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
        // One per packet counts (a sender writes one): each walks the packets it covers, so a packet full
        // of copies of one wide ACK would cost its receiver a walk per copy.
        if (!acked) on_ack_frame(now, f.ack);
        acked = true;
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
  if (r == ReliableRecvStream::Result::kTooFragmented) {
    protocol_violation("reliable data past a gap in too many pieces", now);
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
