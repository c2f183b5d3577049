// The Messages header codec (src/messages/channel_header.cpp): round trips at every length boundary, and
// every kind of bad input refused.
#include "messages/channel_header.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace peerlink::messages {
namespace {

TEST(ChannelHeader, RoundTripAtEveryLengthBoundary_MinimalLength) {
  struct Case {
    uint32_t channel;
    size_t size;
  } cases[] = {{0, 2},       {1, 2},       {127, 2},       {128, 3},       {16383, 3},      {16384, 4},
               {2097151, 4}, {2097152, 5}, {268435455, 5}, {268435456, 6}, {0xFFFFFFFFu, 6}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.channel);
    uint8_t buf[kMaxChannelHeader + 3] = {};
    const size_t n = encode_channel_header(c.channel, buf);
    EXPECT_EQ(n, c.size);
    EXPECT_EQ(buf[0], kChannelHeaderV1);
    buf[n] = 'x';  // a payload after it is not part of the header
    uint32_t channel = 7;
    EXPECT_EQ(decode_channel_header(buf, n + 1, channel), n);
    EXPECT_EQ(channel, c.channel);
    EXPECT_EQ(decode_channel_header(buf, n, channel), n);  // an empty payload is fine
  }
}

TEST(ChannelHeader, BadInput_Refused) {
  using Bytes = std::vector<uint8_t>;
  const Bytes bad[] = {
      Bytes{},                                                      // empty
      Bytes{kChannelHeaderV1},                                      // no channel
      Bytes{0xC2, 0x05},                                            // another marker (reserved)
      Bytes{'h', 'i'},                                              // no marker at all
      Bytes{kChannelHeaderV1, 0x80},                                // truncated: more follows, nothing does
      Bytes{kChannelHeaderV1, 0x85, 0x00, 'x'},                     // not minimal: a zero last group
      Bytes{kChannelHeaderV1, 0x80, 0x00},                          // not minimal, for 0
      Bytes{kChannelHeaderV1, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F},        // beyond 32 bits
      Bytes{kChannelHeaderV1, 0xFF, 0xFF, 0xFF, 0xFF, 0x10},        // 2^32 exactly
      Bytes{kChannelHeaderV1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},  // more than 5 bytes of channel
  };
  for (const Bytes& b : bad) {
    uint32_t channel = 99;
    EXPECT_EQ(decode_channel_header(b.data(), b.size(), channel), 0u) << ::testing::PrintToString(b);
    EXPECT_EQ(channel, 99u) << "a refused header must not change the channel";
  }
}

}  // namespace
}  // namespace peerlink::messages
