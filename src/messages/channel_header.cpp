#include "channel_header.hpp"

namespace peerlink::messages {

size_t encode_channel_header(uint32_t channel, uint8_t* out) {
  out[0] = kChannelHeaderV1;
  size_t n = 1;
  do {
    const uint8_t group = uint8_t(channel & 0x7f);
    channel >>= 7;
    out[n++] = channel != 0 ? uint8_t(group | 0x80) : group;
  } while (channel != 0);
  return n;
}

size_t decode_channel_header(const uint8_t* data, size_t size, uint32_t& channel) {
  if (size < 2 || data[0] != kChannelHeaderV1) return 0;
  uint64_t value = 0;
  for (size_t i = 1; i < size && i < kMaxChannelHeader; ++i) {
    const uint8_t b = data[i];
    value |= uint64_t(b & 0x7f) << (7 * (i - 1));
    if ((b & 0x80) == 0) {
      if (b == 0 && i > 1) return 0;  // not minimal: a zero last group
      if (value > UINT32_MAX) return 0;
      channel = uint32_t(value);
      return i + 1;
    }
  }
  return 0;  // truncated, or more than 5 bytes of channel
}

}  // namespace peerlink::messages
