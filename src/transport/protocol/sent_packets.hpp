// The sender's record of packets in flight, indexed by packet number, with what each carried so that an
// acknowledgement frees it and a loss re-queues exactly its retransmittable frames (never the packet).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>

#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

struct SentRecord {
  enum Kind : uint8_t { kReliable, kMaxLaneData };
  Kind kind = kReliable;
  uint32_t lane = 0;
  uint32_t length = 0;
  uint64_t offset = 0;
};

struct SentPacket {
  static constexpr size_t kMaxRecords = 4;
  enum class Status : uint8_t { kInFlight, kAcked, kLost };

  uint64_t pn = 0;
  Instant time_sent{};
  uint32_t size = 0;
  Status status = Status::kInFlight;
  bool ack_eliciting = false;
  bool in_flight = false;  // counts toward bytes in flight
  bool has_max_data = false;
  bool has_close = false;
  bool has_ack_frequency = false;
  bool mtu_probe = false;
  bool counted_in_episode = false;  // declared lost in the current loss episode (for congestion undo)
  bool app_limited = false;         // delivery-rate state when it was sent (see Connection::sample_delivery)
  Instant lost_at{};
  Instant delivered_time{};
  Instant first_sent_time{};
  uint64_t delivered = 0;
  uint8_t record_count = 0;
  std::array<SentRecord, kMaxRecords> records{};

  bool add_record(const SentRecord& r) {
    if (record_count == kMaxRecords) return false;
    records[record_count++] = r;
    return true;
  }
};

// Every packet from the oldest unresolved one to the newest, so that a packet number indexes it directly.
class SentPackets {
 public:
  void push(const SentPacket& p) {
    if (packets_.empty()) first_pn_ = p.pn;
    packets_.push_back(p);
  }
  SentPacket* find(uint64_t pn) {
    if (packets_.empty() || pn < first_pn_ || pn - first_pn_ >= packets_.size()) return nullptr;
    return &packets_[size_t(pn - first_pn_)];
  }
  // Drops resolved packets from the front. Packets declared lost stay until lost_cutoff (sent before it),
  // so that a late acknowledgement can still reveal the loss as spurious (reordering).
  void trim(Instant lost_cutoff) {
    while (!packets_.empty()) {
      const SentPacket& p = packets_.front();
      if (p.status == SentPacket::Status::kInFlight) break;
      if (p.status == SentPacket::Status::kLost && p.time_sent >= lost_cutoff) break;
      packets_.pop_front();
      ++first_pn_;
    }
  }
  bool empty() const { return packets_.empty(); }
  size_t size() const { return packets_.size(); }
  uint64_t first_pn() const { return first_pn_; }
  std::deque<SentPacket>::iterator begin() { return packets_.begin(); }
  std::deque<SentPacket>::iterator end() { return packets_.end(); }
  void clear() {
    packets_.clear();
    packets_.shrink_to_fit();
  }

 private:
  std::deque<SentPacket> packets_;
  uint64_t first_pn_ = 0;
};

}  // namespace peerlink::protocol
