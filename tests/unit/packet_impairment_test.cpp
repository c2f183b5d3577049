// The simulated bad network (src/transport/io/packet_impairment.hpp), driven with simulated time only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "transport/io/packet_impairment.hpp"

namespace peerlink::io {
namespace {

using protocol::Duration;
using protocol::Instant;
using protocol::kNever;
using protocol::PathAddress;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

const Instant kStart = Instant(seconds(1000));

// Datagram `id`: the id in its first 4 bytes, then a pattern derived from it, so copies can be checked.
std::vector<uint8_t> payload(uint32_t id, size_t len) {
  std::vector<uint8_t> data(std::max<size_t>(len, 4));
  std::memcpy(data.data(), &id, 4);
  for (size_t i = 4; i < data.size(); ++i)
    data[i] = uint8_t(id * 31 + i);
  return data;
}

PathAddress address_of(uint32_t id) {
  return PathAddress::from_u64(id % 7 + 1);
}

struct Release {
  Instant at;
  uint32_t id;
  PathAddress address;
  std::vector<uint8_t> data;
};

uint32_t id_of(const std::vector<uint8_t>& data) {
  uint32_t id = 0;
  if (data.size() >= 4) std::memcpy(&id, data.data(), 4);
  return id;
}

void submit(PacketImpairment& impairment, Instant now, uint32_t id, size_t len) {
  const std::vector<uint8_t> data = payload(id, len);
  impairment.submit(now, address_of(id), data.data(), data.size());
}

// Advances simulated time straight to each release; the release time of a datagram is when it was popped.
std::vector<Release> drain(PacketImpairment& impairment) {
  std::vector<Release> out;
  ImpairedDatagram d;
  while (impairment.queued() > 0) {
    const Instant now = impairment.next_due();
    while (impairment.pop_due(now, d))
      out.push_back(Release{now, id_of(d.data), d.address, d.data});
  }
  EXPECT_EQ(impairment.next_due(), kNever);
  return out;
}

// Submits `count` datagrams of `len` bytes, one every `interval`, then releases them all.
std::vector<Release> run(PacketImpairment& impairment, uint32_t count, Duration interval, size_t len) {
  for (uint32_t i = 0; i < count; ++i)
    submit(impairment, kStart + interval * i, i, len);
  return drain(impairment);
}

size_t inversions(const std::vector<Release>& releases) {
  size_t n = 0;
  uint32_t highest = 0;
  for (const Release& r : releases) {
    if (r.id < highest) ++n;
    highest = std::max(highest, r.id);
  }
  return n;
}

std::string seed_note(uint64_t seed) {
  return "seed " + std::to_string(seed);
}

TEST(PacketImpairment, InactiveConfig_PassesEverythingThroughUnchangedInOrder) {
  PacketImpairment impairment(NetworkImpairment{}, 1);
  EXPECT_FALSE(impairment.active());

  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 100; ++i) {
    sent.push_back(payload(i, i * 13 % 1400));
    impairment.submit(kStart, address_of(i), sent.back().data(), sent.back().size());
  }
  impairment.submit(kStart, address_of(100), nullptr, 0);  // empty datagrams are datagrams too
  EXPECT_EQ(impairment.queued(), 101u);
  EXPECT_EQ(impairment.next_due(), kStart);

  ImpairedDatagram d;
  EXPECT_FALSE(impairment.pop_due(kStart - nanoseconds(1), d));
  for (uint32_t i = 0; i < 100; ++i) {
    ASSERT_TRUE(impairment.pop_due(kStart, d));
    EXPECT_EQ(d.data, sent[i]);
    EXPECT_EQ(d.address, address_of(i));
  }
  ASSERT_TRUE(impairment.pop_due(kStart, d));
  EXPECT_TRUE(d.data.empty());
  EXPECT_FALSE(impairment.pop_due(kStart + seconds(1), d));
  EXPECT_EQ(impairment.next_due(), kNever);

  const auto& c = impairment.counters();
  EXPECT_EQ(c.submitted, 101u);
  EXPECT_EQ(c.released, 101u);
  EXPECT_EQ(c.dropped_loss + c.dropped_rate_limit + c.delayed + c.reordered + c.duplicated, 0u);
}

TEST(PacketImpairment, PopDue_ReusingOneOutput_DataStaysExact) {
  NetworkImpairment config;
  config.lag = milliseconds(1);
  PacketImpairment impairment(config, 2);
  ImpairedDatagram d;
  // Sizes go up and down so recycled buffers are both larger and smaller than the next datagram.
  for (uint32_t i = 0; i < 200; ++i) {
    submit(impairment, kStart + milliseconds(i), i, (i * 577) % 1500);
    ASSERT_TRUE(impairment.pop_due(kStart + milliseconds(i + 1), d));
    EXPECT_EQ(d.data, payload(i, (i * 577) % 1500));
    EXPECT_EQ(impairment.queued(), 0u);
  }
}

TEST(PacketImpairment, Loss_ThirtyPercentOfTenThousand_DropsThirtyPercentWithinTwoPoints) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed_note(seed));
    NetworkImpairment config;
    config.loss_percent = 30;
    PacketImpairment impairment(config, seed);
    EXPECT_TRUE(impairment.active());
    const std::vector<Release> out = run(impairment, 10'000, microseconds(100), 200);

    const auto& c = impairment.counters();
    EXPECT_NEAR(double(c.dropped_loss), 3000, 200);
    EXPECT_EQ(out.size() + c.dropped_loss, 10'000u);
    EXPECT_EQ(c.released, out.size());
    EXPECT_EQ(inversions(out), 0u);
    for (const Release& r : out)
      ASSERT_EQ(r.at, kStart + microseconds(100) * r.id);  // survivors are not delayed
  }
}

TEST(PacketImpairment, Lag_DelaysEveryDatagramByExactlyTheLag) {
  NetworkImpairment config;
  config.lag = milliseconds(40);
  PacketImpairment impairment(config, 3);
  for (uint32_t i = 0; i < 50; ++i)
    submit(impairment, kStart + milliseconds(i), i, 100);

  EXPECT_EQ(impairment.next_due(), kStart + milliseconds(40));
  ImpairedDatagram d;
  EXPECT_FALSE(impairment.pop_due(kStart + milliseconds(40) - nanoseconds(1), d));

  const std::vector<Release> out = drain(impairment);
  ASSERT_EQ(out.size(), 50u);
  for (uint32_t i = 0; i < 50; ++i) {
    EXPECT_EQ(out[i].id, i);
    EXPECT_EQ(out[i].at, kStart + milliseconds(i) + milliseconds(40));
  }
  EXPECT_EQ(impairment.counters().delayed, 50u);
}

TEST(PacketImpairment, Jitter_StaysWithinLagPlusJitterAndReordersSome) {
  NetworkImpairment config;
  config.lag = milliseconds(10);
  config.jitter = milliseconds(5);
  const uint64_t seed = 4;
  SCOPED_TRACE(seed_note(seed));
  PacketImpairment impairment(config, seed);
  const std::vector<Release> out = run(impairment, 2000, microseconds(100), 100);

  ASSERT_EQ(out.size(), 2000u);
  Duration shortest = seconds(1), longest{0};
  for (const Release& r : out) {
    const Duration delay = r.at - (kStart + microseconds(100) * r.id);
    ASSERT_GE(delay, milliseconds(10));
    ASSERT_LE(delay, milliseconds(15));
    shortest = std::min(shortest, delay);
    longest = std::max(longest, delay);
  }
  // Uniform over the whole range, not bunched at one end.
  EXPECT_LT(shortest, microseconds(10'500));
  EXPECT_GT(longest, microseconds(14'500));
  EXPECT_GT(inversions(out), 100u);
}

TEST(PacketImpairment, Reorder_HoldsBackThePercentageByExactlyTheReorderLag) {
  NetworkImpairment config;
  config.lag = milliseconds(5);
  config.reorder_percent = 25;
  config.reorder_lag = milliseconds(10);
  const uint64_t seed = 5;
  SCOPED_TRACE(seed_note(seed));
  PacketImpairment impairment(config, seed);
  const std::vector<Release> out = run(impairment, 10'000, microseconds(100), 100);

  ASSERT_EQ(out.size(), 10'000u);
  uint64_t held_back = 0;
  for (const Release& r : out) {
    const Duration delay = r.at - (kStart + microseconds(100) * r.id);
    if (delay == milliseconds(15))
      ++held_back;
    else
      ASSERT_EQ(delay, milliseconds(5));
  }
  EXPECT_NEAR(double(held_back), 2500, 200);
  EXPECT_EQ(impairment.counters().reordered, held_back);
  EXPECT_GT(inversions(out), 1000u);
}

TEST(PacketImpairment, Duplicate_CopiesAreIdenticalAndWithinTheDuplicateLag) {
  NetworkImpairment config;
  config.lag = milliseconds(1);
  config.duplicate_percent = 20;
  config.duplicate_lag_max = milliseconds(3);
  const uint64_t seed = 6;
  SCOPED_TRACE(seed_note(seed));
  PacketImpairment impairment(config, seed);
  const std::vector<Release> out = run(impairment, 10'000, microseconds(100), 64);

  std::map<uint32_t, std::vector<const Release*>> by_id;
  for (const Release& r : out)
    by_id[r.id].push_back(&r);
  ASSERT_EQ(by_id.size(), 10'000u);

  uint64_t doubled = 0;
  Duration longest_copy_lag{0};
  for (const auto& [id, copies] : by_id) {
    ASSERT_LE(copies.size(), 2u);
    const Instant submitted = kStart + microseconds(100) * id;
    EXPECT_EQ(copies[0]->at, submitted + milliseconds(1));
    for (const Release* r : copies) {
      EXPECT_EQ(r->data, payload(id, 64));
      EXPECT_EQ(r->address, address_of(id));
    }
    if (copies.size() == 2) {
      ++doubled;
      ASSERT_GE(copies[1]->at, copies[0]->at);
      ASSERT_LE(copies[1]->at, copies[0]->at + milliseconds(3));
      longest_copy_lag = std::max(longest_copy_lag, copies[1]->at - copies[0]->at);
    }
  }
  EXPECT_NEAR(double(doubled), 2000, 200);
  EXPECT_GT(longest_copy_lag, milliseconds(2));
  const auto& c = impairment.counters();
  EXPECT_EQ(c.duplicated, doubled);
  EXPECT_EQ(c.released, 10'000u + doubled);
}

TEST(PacketImpairment, RateLimit_OneMegabytePerSecond_ReleasesTwoMegabytesInTwoSeconds) {
  NetworkImpairment config;
  config.rate_limit_bytes_per_second = 1'000'000;  // default burst 16 KiB, queue 256 KiB
  PacketImpairment impairment(config, 7);
  // 4 MB/s offered: 1000-byte datagrams every 250 us for 2 s.
  const std::vector<Release> out = run(impairment, 8000, microseconds(250), 1000);

  uint64_t bytes_in_two_seconds = 0;
  for (const Release& r : out)
    if (r.at <= kStart + seconds(2)) bytes_in_two_seconds += r.data.size();
  EXPECT_NEAR(double(bytes_in_two_seconds), 2'000'000, 100'000);

  // Once the burst is spent, datagrams leave exactly one transmission time (1000 B / 1 MB/s) apart.
  ASSERT_GT(out.size(), 1000u);
  EXPECT_EQ(out.front().at, kStart);
  for (size_t i = 100; i < out.size(); ++i)
    ASSERT_EQ(out[i].at - out[i - 1].at, milliseconds(1)) << "release " << i;
  // FIFO: the limiter alone never reorders, and the queue bounds the wait: 262,144 B / 1 MB/s + one datagram.
  EXPECT_EQ(inversions(out), 0u);
  for (const Release& r : out)
    ASSERT_LE(r.at - (kStart + microseconds(250) * r.id), milliseconds(263));

  const auto& c = impairment.counters();
  EXPECT_EQ(c.released + c.dropped_rate_limit, 8000u);
  EXPECT_GT(c.dropped_rate_limit, 5000u);
}

TEST(PacketImpairment, RateLimit_BurstLeavesAtOnceThenWaitsForTokens) {
  NetworkImpairment config;
  config.rate_limit_bytes_per_second = 1'000'000;
  config.rate_limit_burst_bytes = 16'384;
  PacketImpairment impairment(config, 8);
  const std::vector<Release> out = run(impairment, 20, Duration(0), 1000);

  ASSERT_EQ(out.size(), 20u);
  for (uint32_t i = 0; i < 16; ++i)
    EXPECT_EQ(out[i].at, kStart) << i;
  // 384 bytes of tokens are left; the 17th datagram waits for the other 616.
  for (uint32_t i = 16; i < 20; ++i)
    EXPECT_EQ(out[i].at, kStart + microseconds(616) + milliseconds(i - 16)) << i;
}

TEST(PacketImpairment, RateLimit_FullQueue_DropsTheExcessTail) {
  NetworkImpairment config;
  config.rate_limit_bytes_per_second = 1'000'000;
  config.rate_limit_burst_bytes = 0;
  config.rate_limit_queue_bytes = 10'000;
  PacketImpairment impairment(config, 9);

  // The first leaves at once, ten more fit in the queue, the rest are dropped.
  for (uint32_t i = 0; i < 100; ++i)
    submit(impairment, kStart, i, 1000);
  EXPECT_EQ(impairment.counters().dropped_rate_limit, 89u);
  // 5 ms later five have left the queue, so exactly five more fit.
  for (uint32_t i = 100; i < 106; ++i)
    submit(impairment, kStart + milliseconds(5), i, 1000);
  EXPECT_EQ(impairment.counters().dropped_rate_limit, 90u);

  const std::vector<Release> out = drain(impairment);
  const std::vector<uint32_t> expected_ids = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, 101, 102, 103, 104};
  ASSERT_EQ(out.size(), expected_ids.size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].id, expected_ids[i]);
    EXPECT_EQ(out[i].at, kStart + milliseconds(i));
  }
}

std::vector<std::pair<Instant, std::vector<uint8_t>>> everything_on(uint64_t seed) {
  NetworkImpairment config;
  config.loss_percent = 10;
  config.rate_limit_bytes_per_second = 2'000'000;
  config.lag = milliseconds(20);
  config.jitter = milliseconds(10);
  config.reorder_percent = 10;
  config.duplicate_percent = 10;
  PacketImpairment impairment(config, seed);
  for (uint32_t i = 0; i < 5000; ++i)
    submit(impairment, kStart + microseconds(300) * i, i, 100 + i * 37 % 1300);
  std::vector<std::pair<Instant, std::vector<uint8_t>>> out;
  for (const Release& r : drain(impairment))
    out.emplace_back(r.at, r.data);
  return out;
}

TEST(PacketImpairment, Seed_SameSeedIdenticalOutput_DifferentSeedDifferentOutput) {
  const auto first = everything_on(42);
  EXPECT_GT(first.size(), 3000u);
  EXPECT_EQ(first, everything_on(42));
  EXPECT_NE(first, everything_on(43));
  EXPECT_NE(everything_on(0), everything_on(1));
}

TEST(PacketImpairment, GarbageConfig_NaNNegativeAndHugeValues_NeverCrash) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  {  // NaN and negative mean off.
    NetworkImpairment config;
    config.loss_percent = nan;
    config.reorder_percent = -5;
    config.duplicate_percent = -inf;
    config.lag = microseconds(-1'000'000);
    config.jitter = microseconds::min();
    PacketImpairment impairment(config, 10);
    EXPECT_FALSE(impairment.active());
    const std::vector<Release> out = run(impairment, 100, milliseconds(1), 100);
    ASSERT_EQ(out.size(), 100u);
    for (const Release& r : out)
      EXPECT_EQ(r.at, kStart + milliseconds(r.id));
  }
  {  // Above 100 % means always.
    NetworkImpairment config;
    config.loss_percent = 1e300;
    PacketImpairment impairment(config, 11);
    EXPECT_TRUE(impairment.active());
    EXPECT_TRUE(run(impairment, 100, milliseconds(1), 100).empty());
    EXPECT_EQ(impairment.counters().dropped_loss, 100u);
  }
  {  // Every maximum at once: absurd but finite delays, every datagram twice.
    NetworkImpairment config;
    config.reorder_percent = inf;
    config.duplicate_percent = 150;
    config.lag = microseconds::max();
    config.jitter = microseconds::max();
    config.reorder_lag = microseconds::max();
    config.duplicate_lag_max = microseconds::max();
    config.rate_limit_bytes_per_second = std::numeric_limits<uint64_t>::max();
    config.rate_limit_burst_bytes = std::numeric_limits<uint64_t>::max();
    config.rate_limit_queue_bytes = std::numeric_limits<uint64_t>::max();
    PacketImpairment impairment(config, 12);
    const std::vector<Release> out = run(impairment, 100, milliseconds(1), 1500);
    EXPECT_EQ(out.size(), 200u);
    for (const Release& r : out)
      EXPECT_LT(r.at, kStart + std::chrono::hours(24 * 5));
  }
  {  // The slowest possible link with no queue: only what the burst covers gets through.
    NetworkImpairment config;
    config.rate_limit_bytes_per_second = 1;
    config.rate_limit_burst_bytes = 0;
    config.rate_limit_queue_bytes = 0;
    PacketImpairment impairment(config, 13);
    const std::vector<Release> out = run(impairment, 100, milliseconds(1), 1500);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].id, 0u);
    EXPECT_EQ(impairment.counters().dropped_rate_limit, 99u);
  }
  {  // Times at the ends of the clock, and going backwards, saturate instead of overflowing.
    NetworkImpairment config;
    config.rate_limit_bytes_per_second = 1;
    config.rate_limit_burst_bytes = 0;
    config.lag = std::chrono::hours(1);
    config.jitter = std::chrono::hours(1);
    PacketImpairment impairment(config, 14);
    const Instant times[] = {Instant::min(), kNever - nanoseconds(1), Instant{}, Instant::min(), kNever};
    uint32_t id = 0;
    for (Instant t : times)
      for (int i = 0; i < 3; ++i)
        submit(impairment, t, id++, 65'535);
    const std::vector<Release> out = drain(impairment);
    EXPECT_EQ(out.size() + impairment.counters().dropped_rate_limit, 15u);
  }
}

}  // namespace
}  // namespace peerlink::io
