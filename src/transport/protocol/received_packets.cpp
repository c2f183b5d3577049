#include "transport/protocol/received_packets.hpp"

namespace peerlink::protocol {

bool ReceivedPackets::is_duplicate(uint64_t pn) const {
  if (pn < floor_) return true;
  for (const PacketRange& r : ranges_) {
    if (pn > r.largest) return false;
    if (pn >= r.smallest) return true;
  }
  return false;
}

bool ReceivedPackets::insert(uint64_t pn, Instant now) {
  if (ranges_.empty()) {
    ranges_.push_back({pn, pn});
    largest_time_ = now;
    return pn != 0;
  }
  PacketRange& top = ranges_.front();
  if (pn == top.largest + 1) {
    top.largest = pn;
    largest_time_ = now;
    return false;
  }
  bool out_of_order = true;
  if (pn > top.largest) {
    ranges_.insert(ranges_.begin(), PacketRange{pn, pn});
    largest_time_ = now;
  } else {
    size_t i = 0;
    while (i < ranges_.size() && ranges_[i].smallest > pn)
      ++i;
    // ranges_[i-1].smallest > pn and (i == size or ranges_[i].smallest <= pn); pn is not a duplicate.
    bool joins_above = i > 0 && ranges_[i - 1].smallest == pn + 1;
    bool joins_below = i < ranges_.size() && ranges_[i].largest + 1 == pn;
    if (joins_above && joins_below) {
      ranges_[i - 1].smallest = ranges_[i].smallest;
      ranges_.erase(ranges_.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (joins_above) {
      ranges_[i - 1].smallest = pn;
    } else if (joins_below) {
      ranges_[i].largest = pn;
    } else {
      ranges_.insert(ranges_.begin() + static_cast<std::ptrdiff_t>(i), PacketRange{pn, pn});
    }
  }
  if (ranges_.size() > kMaxRanges) {
    floor_ = ranges_.back().largest + 1;
    ranges_.pop_back();
  }
  return out_of_order;
}

void ReceivedPackets::fill_ack(AckFrame& f, Instant now) const {
  f.range_count = 0;
  for (const PacketRange& r : ranges_) {
    if (f.range_count == kMaxRanges || f.range_count == kMaxAckRanges) break;
    f.ranges[f.range_count++] = r;
  }
  f.ack_delay_us = now > largest_time_ ? uint64_t(to_us(now - largest_time_)) : 0;
}

}  // namespace peerlink::protocol
