// The sender's record of packets in flight, indexed by packet number, with what each carried so that an
// acknowledgement frees it and a loss re-queues exactly its retransmittable frames (never the packet).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

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
// A ring of them whose capacity is a power of two: a packet sent and one resolved cost no allocation (a
// deque allocated and freed a 512-byte node every three packets, 2.8 % of core-throughput's sending
// thread). The ring doubles when full. Once no more than a sixteenth of it is used, trim() shrinks it to
// four times what is left: a connection that goes quiet after a burst gives the burst's memory back at its
// last acknowledgement, while the swings of a busy connection's packets in flight do not copy the ring back
// and forth (shrinking at a quarter did, 0.7 % of that thread).
class SentPackets {
 public:
  class iterator {
   public:
    iterator(SentPackets* owner, size_t index) : owner_(owner), index_(index) {}
    SentPacket& operator*() const { return owner_->at(index_); }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    bool operator!=(const iterator& o) const { return index_ != o.index_; }

   private:
    SentPackets* owner_;
    size_t index_;  // from the oldest
  };

  // p.pn must follow the newest packet's (packet numbers are consecutive). Acknowledged packets at the
  // front go first: a receiver sends mostly acknowledgements, which are resolved when sent and which only
  // the acknowledgement of an occasional ack-eliciting packet would trim.
  void push(const SentPacket& p) {
    drop_resolved(Instant::min());  // acknowledged ones only: lost ones wait for trim()'s cutoff
    if (count_ == 0) first_pn_ = p.pn;
    if (count_ == ring_.size()) resize(std::max(kMinCapacity, ring_.size() * 2));
    ring_[(head_ + count_) & (ring_.size() - 1)] = p;
    ++count_;
  }
  SentPacket* find(uint64_t pn) {
    if (count_ == 0 || pn < first_pn_ || pn - first_pn_ >= count_) return nullptr;
    return &at(size_t(pn - first_pn_));
  }
  // Drops resolved packets from the front. Packets declared lost stay until lost_cutoff (sent before it),
  // so that a late acknowledgement can still reveal the loss as spurious (reordering).
  void trim(Instant lost_cutoff) {
    drop_resolved(lost_cutoff);
    if (ring_.size() > kMinCapacity && count_ <= ring_.size() / 16) {
      size_t capacity = kMinCapacity;
      while (capacity < count_ * 4)
        capacity *= 2;
      resize(capacity);
    }
  }
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  // Slots held, for tests.
  size_t capacity() const { return ring_.size(); }
  uint64_t first_pn() const { return first_pn_; }
  // Oldest first. push() and trim() invalidate iterators and pointers.
  iterator begin() { return iterator(this, 0); }
  iterator end() { return iterator(this, count_); }
  void clear() {
    ring_.clear();
    ring_.shrink_to_fit();
    head_ = count_ = 0;
  }

 private:
  static constexpr size_t kMinCapacity = 4;

  SentPacket& at(size_t index) { return ring_[(head_ + index) & (ring_.size() - 1)]; }
  // The oldest packets while they are acknowledged, or declared lost and sent before lost_cutoff.
  void drop_resolved(Instant lost_cutoff) {
    while (count_ > 0) {
      const SentPacket& p = ring_[head_];
      if (p.status == SentPacket::Status::kInFlight) break;
      if (p.status == SentPacket::Status::kLost && p.time_sent >= lost_cutoff) break;
      head_ = (head_ + 1) & (ring_.size() - 1);
      --count_;
      ++first_pn_;
    }
  }
  void resize(size_t capacity) {
    std::vector<SentPacket> next(capacity);
    for (size_t i = 0; i < count_; ++i)
      next[i] = at(i);
    ring_.swap(next);
    head_ = 0;
  }

  std::vector<SentPacket> ring_;  // size is 0 or a power of two
  size_t head_ = 0;               // the oldest packet's slot
  size_t count_ = 0;
  uint64_t first_pn_ = 0;
};

}  // namespace peerlink::protocol
