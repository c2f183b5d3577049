// The token-bucket pacer: how much may leave at once after a pause, at low and at high rates, and that the
// long-run rate stays the pacing rate whatever the bucket holds.
#include <gtest/gtest.h>

#include "transport/protocol/congestion.hpp"

namespace peerlink::protocol {
namespace {

constexpr size_t kPacket = 1200;

Instant at_us(int64_t us) {
  return Instant(std::chrono::microseconds(us));
}

// Packets that leave at `now` without waiting.
size_t burst_at(Pacer& p, Instant now, double rate) {
  size_t n = 0;
  while (p.next_send_time(now, rate, kPacket) <= now && n < 1000) {
    p.on_sent(now, kPacket, rate);
    ++n;
  }
  return n;
}

TEST(Pacer, LowRate_BurstsOfTenPackets) {
  Pacer p;
  const double rate = 1e6;  // 1 MB/s: a millisecond of it is less than a packet
  burst_at(p, at_us(0), rate);
  EXPECT_EQ(burst_at(p, at_us(1'000'000), rate), 10u) << "a second's pause refills ten packets, no more";
}

TEST(Pacer, HighRate_BurstsOfAMillisecondUpTo1MiB) {
  Pacer p;
  const double rate = 40e6;  // 40 MB/s: a millisecond is 40 kB, 34 packets
  burst_at(p, at_us(0), rate);
  const size_t after_a_pause = burst_at(p, at_us(1'000'000), rate);
  EXPECT_GE(after_a_pause, 33u);
  EXPECT_LE(after_a_pause, 35u);

  Pacer fast;
  const double faster = 2e9;  // a millisecond would be 2 MB: the bucket stops at 1 MiB
  burst_at(fast, at_us(0), faster);
  const size_t capped = burst_at(fast, at_us(1'000'000), faster);
  EXPECT_GE(capped, 1024 * 1024 / kPacket);
  EXPECT_LE(capped, 1024 * 1024 / kPacket + 2);
}

TEST(Pacer, HighRate_LongRunRateIsThePacingRate) {
  Pacer p;
  const double rate = 100e6;
  size_t sent = burst_at(p, at_us(0), rate);  // the first bucket
  const size_t first = sent;
  // A sender that comes back every 5 us for a second sends what the rate allows, not more.
  for (int64_t t = 5; t <= 1'000'000; t += 5)
    sent += burst_at(p, at_us(t), rate);
  const double bytes = double(sent - first) * kPacket;
  EXPECT_NEAR(bytes, rate * 1.0, rate * 0.01);
}

}  // namespace
}  // namespace peerlink::protocol
