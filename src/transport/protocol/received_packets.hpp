// The receiver's record of packet numbers: duplicate/replay rejection and the ranges its ACK frames report.
//
// Ranges are kept newest first and capped; when the cap drops the oldest range, everything at or below it
// counts as already seen. A packet that old is rejected; if it was genuinely new, the sender never sees it
// acknowledged and retransmits its frames in a new packet, so nothing is lost but time.
#pragma once

#include <cstdint>
#include <vector>

#include "transport/protocol/frames.hpp"
#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

class ReceivedPackets {
 public:
  static constexpr size_t kMaxRanges = 32;

  // True if pn was received before or is below the replay floor.
  bool is_duplicate(uint64_t pn) const;
  // Records a packet that authenticated. Returns true if it arrived out of order (a gap before it or it
  // fills a gap), which calls for an immediate ACK.
  bool insert(uint64_t pn, Instant now);

  bool any() const { return !ranges_.empty(); }
  uint64_t largest() const { return ranges_.empty() ? 0 : ranges_.front().largest; }
  // Fills f with up to kMaxRanges ranges (newest first) and the delay since the largest arrived.
  void fill_ack(AckFrame& f, Instant now) const;

 private:
  std::vector<PacketRange> ranges_;  // descending, disjoint, non-adjacent
  uint64_t floor_ = 0;               // numbers below this are rejected
  Instant largest_time_{};
};

}  // namespace peerlink::protocol
