// The Messages header from an untrusted peer: a decode that succeeds must be the minimal encoding of the
// channel it yields (encode gives back the same bytes); nothing reads past the input.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "messages/channel_header.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peerlink::messages;
  uint32_t channel = 0;
  const size_t n = decode_channel_header(data, size, channel);
  FUZZ_CHECK(n == 0 || (n >= 2 && n <= kMaxChannelHeader && n <= size));
  if (n > 0) {
    uint8_t again[kMaxChannelHeader];
    FUZZ_CHECK(encode_channel_header(channel, again) == n);
    FUZZ_CHECK(same_bytes(again, data, n));
  }
  return 0;
}
