// The receiver's reassembly of fragmented unreliable messages: any arrival order gives the message whole;
// fragments that contradict each other, overlap or come in crumbs drop the message instead of delivering
// it with a hole.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "transport/protocol/lane.hpp"

namespace peerlink::protocol {
namespace {

using Bytes = std::vector<uint8_t>;

UnreliableFrame fragment(const Bytes& message, uint64_t id, size_t offset, size_t length, uint32_t lane = 3) {
  UnreliableFrame f;
  f.lane = lane;
  f.message_id = id;
  f.total_length = message.size();
  f.offset = offset;
  f.data = message.data() + offset;
  f.length = length;
  return f;
}

Bytes sample(size_t size) {
  Bytes m(size);
  for (size_t i = 0; i < size; ++i)
    m[i] = uint8_t(i * 13 + 1);
  return m;
}

TEST(UnreliableReassembly, FragmentsInAnyOrder_TheMessageWhole) {
  const Bytes m = sample(65536);
  std::vector<UnreliableFrame> frames;
  for (size_t at = 0; at < m.size(); at += 1150)
    frames.push_back(fragment(m, 7, at, std::min<size_t>(1150, m.size() - at)));
  std::mt19937 rng(5);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(frames.begin(), frames.end(), rng);
    UnreliableReassembly r;
    Bytes out;
    uint32_t lane = 0;
    for (size_t i = 0; i < frames.size(); ++i)
      ASSERT_EQ(r.add(Instant{}, frames[i], out, lane), i + 1 == frames.size()) << "fragment " << i;
    EXPECT_EQ(out, m);
    EXPECT_EQ(lane, 3u);
    EXPECT_TRUE(r.empty());
  }
}

// A fragment repeated (its bytes counted twice) or overlapping another completed the message early, with
// zeros where the missing bytes were. Now such a message is dropped.
TEST(UnreliableReassembly, RepeatedOrOverlappingFragment_DroppedNotDeliveredWithAHole) {
  const Bytes m = sample(3000);
  for (const UnreliableFrame& second : {fragment(m, 1, 0, 1000), fragment(m, 1, 500, 1000)}) {
    UnreliableReassembly r;
    Bytes out;
    uint32_t lane = 0;
    EXPECT_FALSE(r.add(Instant{}, fragment(m, 1, 0, 1000), out, lane));
    EXPECT_FALSE(r.add(Instant{}, second, out, lane));
    EXPECT_FALSE(r.add(Instant{}, fragment(m, 1, 2000, 1000), out, lane));  // 3,000 bytes counted before
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(r.dropped(), 1u);
  }
}

TEST(UnreliableReassembly, OtherLaneOrLengthForTheSameId_Dropped) {
  const Bytes m = sample(3000), longer = sample(4000);
  UnreliableReassembly r;
  Bytes out;
  uint32_t lane = 0;
  EXPECT_FALSE(r.add(Instant{}, fragment(m, 1, 0, 1000), out, lane));
  EXPECT_FALSE(r.add(Instant{}, fragment(m, 1, 1000, 1000, 4), out, lane));
  EXPECT_EQ(r.dropped(), 1u);
  EXPECT_FALSE(r.add(Instant{}, fragment(m, 2, 0, 1000), out, lane));
  EXPECT_FALSE(r.add(Instant{}, fragment(longer, 2, 1000, 1000), out, lane));
  EXPECT_EQ(r.dropped(), 2u);
}

// A message sliced into more fragments than any sender makes is dropped; empty fragments are ignored.
TEST(UnreliableReassembly, Crumbs_Dropped) {
  const Bytes m = sample(65536);
  UnreliableReassembly r;
  Bytes out;
  uint32_t lane = 0;
  EXPECT_FALSE(r.add(Instant{}, fragment(m, 9, 100, 0), out, lane));
  EXPECT_TRUE(r.empty());
  for (size_t i = 0; i <= UnreliableReassembly::kMaxFragments; ++i)
    EXPECT_FALSE(r.add(Instant{}, fragment(m, 9, 2 * i, 1), out, lane));
  EXPECT_EQ(r.dropped(), 1u);
  EXPECT_TRUE(r.empty());
}

}  // namespace
}  // namespace peerlink::protocol
