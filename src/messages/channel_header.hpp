// The header every Messages message starts with (docs/MESSAGES.md, "Wire format"): a marker byte and the
// channel in minimal unsigned LEB128. The one encoder and decoder of the format.
#pragma once

#include <cstddef>
#include <cstdint>

namespace peerlink::messages {

inline constexpr uint8_t kChannelHeaderV1 = 0xC1;
inline constexpr size_t kMaxChannelHeader = 6;  // the marker and at most 5 bytes of LEB128

// Writes the header for channel into out (at least kMaxChannelHeader bytes); returns its size (2–6).
size_t encode_channel_header(uint32_t channel, uint8_t* out);
// The header's size, with channel set, or 0 if data does not start with a valid header (empty, another
// marker, a truncated, non-minimal or over-32-bit channel).
size_t decode_channel_header(const uint8_t* data, size_t size, uint32_t& channel);

}  // namespace peerlink::messages
