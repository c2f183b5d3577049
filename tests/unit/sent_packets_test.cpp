// The sender's ring of packets in flight: found by packet number across the ring's wrap and growth, walked
// oldest first, trimmed only past resolved packets, and its memory given back after a burst.
#include <gtest/gtest.h>

#include <vector>

#include "transport/protocol/sent_packets.hpp"

namespace peerlink::protocol {
namespace {

Instant at_ms(int64_t ms) {
  return Instant(std::chrono::milliseconds(ms));
}

SentPacket packet(uint64_t pn) {
  SentPacket p;
  p.pn = pn;
  p.size = uint32_t(1000 + pn);
  p.time_sent = at_ms(int64_t(pn));
  return p;
}

std::vector<uint64_t> walk(SentPackets& s) {
  std::vector<uint64_t> pns;
  for (SentPacket& p : s)
    pns.push_back(p.pn);
  return pns;
}

TEST(SentPackets, FoundByNumberAcrossWrapAndGrowth_WalkedOldestFirst) {
  SentPackets s;
  EXPECT_EQ(s.find(0), nullptr);
  uint64_t next = 100, oldest = 100;
  // Acknowledge the oldest few after every burst so that the ring's head moves and its slots wrap while it
  // grows.
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 5; ++i)
      s.push(packet(next++));
    for (int i = 0; i < 3; ++i) {
      SentPacket* p = s.find(oldest++);
      ASSERT_NE(p, nullptr);
      p->status = SentPacket::Status::kAcked;
    }
    s.trim(at_ms(0));
    ASSERT_EQ(s.first_pn(), oldest);
    ASSERT_EQ(s.size(), next - oldest);
    for (uint64_t pn = oldest; pn < next; ++pn) {
      SentPacket* p = s.find(pn);
      ASSERT_NE(p, nullptr) << pn;
      EXPECT_EQ(p->pn, pn);
      EXPECT_EQ(p->size, 1000 + pn);
    }
    EXPECT_EQ(s.find(oldest - 1), nullptr);
    EXPECT_EQ(s.find(next), nullptr);
  }
  std::vector<uint64_t> expected;
  for (uint64_t pn = oldest; pn < next; ++pn)
    expected.push_back(pn);
  EXPECT_EQ(walk(s), expected);
}

TEST(SentPackets, Trim_StopsAtInFlightAndAtRecentlyLost) {
  SentPackets s;
  for (uint64_t pn = 0; pn < 6; ++pn)
    s.push(packet(pn));
  s.find(0)->status = SentPacket::Status::kAcked;
  s.find(1)->status = SentPacket::Status::kLost;   // sent at 1 ms
  s.find(3)->status = SentPacket::Status::kAcked;  // behind 2, still in flight
  s.trim(at_ms(1));                                // 1 was sent at the cutoff: kept for a late ack
  EXPECT_EQ(s.first_pn(), 1u);
  s.trim(at_ms(2));
  EXPECT_EQ(s.first_pn(), 2u);
  EXPECT_EQ(s.size(), 4u);
  EXPECT_EQ(walk(s), (std::vector<uint64_t>{2, 3, 4, 5}));
}

TEST(SentPackets, MemoryGivenBackAfterABurst) {
  SentPackets s;
  for (uint64_t pn = 0; pn < 5000; ++pn)
    s.push(packet(pn));
  const size_t burst = s.capacity();
  EXPECT_GE(burst, 5000u);
  // A fifth still in flight: kept as it is (a busy connection's packets in flight swing that much).
  for (uint64_t pn = 0; pn < 4000; ++pn)
    s.find(pn)->status = SentPacket::Status::kAcked;
  s.trim(at_ms(0));
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(s.capacity(), burst);
  // Ten left: four times that, in one go.
  for (uint64_t pn = 4000; pn < 4990; ++pn)
    s.find(pn)->status = SentPacket::Status::kAcked;
  s.trim(at_ms(0));
  EXPECT_EQ(s.capacity(), 64u);
  std::vector<uint64_t> left;
  for (uint64_t pn = 4990; pn < 5000; ++pn)
    left.push_back(pn);
  EXPECT_EQ(walk(s), left);
  // The last acknowledgement of a quiet connection: the smallest ring.
  for (SentPacket& p : s)
    p.status = SentPacket::Status::kAcked;
  s.trim(at_ms(0));
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.capacity(), 4u);
  s.push(packet(5000));  // numbering goes on where it left off
  ASSERT_NE(s.find(5000), nullptr);
  EXPECT_EQ(s.find(5000)->size, 6000u);
  s.clear();
  EXPECT_EQ(s.capacity(), 0u);
  EXPECT_EQ(s.find(5000), nullptr);
}

// Acknowledgement-only packets [from, to): resolved when sent, and never acknowledged themselves.
void push_acknowledgements(SentPackets& s, uint64_t from, uint64_t to) {
  for (uint64_t pn = from; pn < to; ++pn) {
    SentPacket p = packet(pn);
    p.status = SentPacket::Status::kAcked;
    s.push(p);
  }
}

TEST(SentPackets, AcknowledgementsOnly_NothingAccumulates) {
  SentPackets s;  // a receiver's: mostly acknowledgements
  push_acknowledgements(s, 0, 10000);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.first_pn(), 9999u);
  EXPECT_EQ(s.capacity(), 4u);
  // Behind an ack-eliciting packet in flight they wait for it.
  s.push(packet(10000));
  push_acknowledgements(s, 10001, 10010);
  EXPECT_EQ(s.first_pn(), 10000u);
  EXPECT_EQ(s.size(), 10u);
}

}  // namespace
}  // namespace peerlink::protocol
