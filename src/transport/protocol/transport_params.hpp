// Transport parameters: what each side tells the other in its handshake payload (docs/PROTOCOL.md §4.3).
// A sequence of (id varint, length varint, value) entries; unknown ids are skipped, which is the room for
// extension. The one encoder and decoder of the format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace peerlink::protocol {

// The least credit a peer may grant (zero would stall the connection): smaller or missing values become
// this.
inline constexpr uint64_t kMinInitialCredit = 64 * 1024;

struct TransportParams {
  uint64_t max_data = kMinInitialCredit;       // connection-wide reliable bytes the peer may send
  uint64_t max_lane_data = kMinInitialCredit;  // per lane, initially
};

std::vector<uint8_t> encode_transport_params(const TransportParams& params);
// Never fails: entries up to the first malformed one count (a truncated entry ends the list), unknown ids
// and values that are not a varint are ignored, and values below kMinInitialCredit are raised to it.
TransportParams decode_transport_params(const uint8_t* data, size_t size);

}  // namespace peerlink::protocol
