// Congestion control on impaired paths, in simulated time: random (non-congestive) loss, jitter with
// reordering and duplication, and flows sharing a bottleneck. BBR against the window-based CUBIC on the
// same paths and seeds; the figures are printed as "[ cc ]" lines.
#include <algorithm>
#include <array>

#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::CongestionAlgorithm;

constexpr uint64_t kBottleneckBytes = 10'000'000;  // per second
constexpr uint64_t kTenMB = 10'000'000;

const char* name_of(CongestionAlgorithm a) {
  switch (a) {
    case CongestionAlgorithm::kBbr:
      return "BBR";
    case CongestionAlgorithm::kCubic:
      return "CUBIC";
    case CongestionAlgorithm::kNewReno:
      return "NewReno";
  }
  return "?";
}

// The data direction of the path: a 10 MB/s bottleneck with a 256 KiB drop-tail queue (the Host
// simulation's default) and 20 ms one way; the acknowledgements travel back with 20 ms.
PairOptions bottleneck_path(CongestionAlgorithm alg, Duration one_way) {
  PairOptions o;
  o.client.connection.congestion = alg;
  o.client_to_server.delay = o.server_to_client.delay = one_way;
  o.client_to_server.bandwidth_bps = kBottleneckBytes * 8;
  o.client_to_server.queue_bytes = 256 * 1024;
  return o;
}

// Bytes per second of a 10 MB transfer from connect to the last byte (slow start included), exact.
double transfer_rate(const PairOptions& o, uint64_t seed) {
  SimPair p(seed, o);
  EXPECT_TRUE(p.connect()) << p.where();
  TransferResult r = bulk_transfer(p, kTenMB, 64 * 1024, seconds(600));
  EXPECT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash) << p.where();
  return double(r.bytes) / std::chrono::duration<double>(r.elapsed).count();
}

double random_loss_rate(CongestionAlgorithm alg, double loss, uint64_t seed) {
  PairOptions o = bottleneck_path(alg, milliseconds(20));
  o.client_to_server.loss = loss;
  const double rate = transfer_rate(o, seed);
  std::printf("[ cc ] %s, 10 MB/s bottleneck, 40 ms RTT, %.0f%% random loss: %.2f MB/s (%.0f%%)\n",
              name_of(alg), loss * 100, rate / 1e6, rate / double(kBottleneckBytes) * 100);
  return rate;
}

TEST(CongestionControlBbr, RandomLossOnePercent_SeventyPercentOfTheBottleneck) {
  const uint64_t seed = test_seed(61);
  const double cubic = random_loss_rate(CongestionAlgorithm::kCubic, 0.01, seed);
  const double bbr = random_loss_rate(CongestionAlgorithm::kBbr, 0.01, seed);
  EXPECT_GE(bbr, 0.70 * double(kBottleneckBytes)) << "seed " << seed;
  EXPECT_GT(bbr, cubic) << "seed " << seed;
}

TEST(CongestionControlBbr, RandomLossFivePercent_StillMovesAndStaysExact) {
  const uint64_t seed = test_seed(62);
  random_loss_rate(CongestionAlgorithm::kCubic, 0.05, seed);
  const double bbr = random_loss_rate(CongestionAlgorithm::kBbr, 0.05, seed);
  EXPECT_GE(bbr, 0.30 * double(kBottleneckBytes)) << "seed " << seed;
}

TEST(CongestionControlBbr, NoLoss_AsFastAsCubic) {
  const uint64_t seed = test_seed(63);
  const double cubic = random_loss_rate(CongestionAlgorithm::kCubic, 0, seed);
  const double bbr = random_loss_rate(CongestionAlgorithm::kBbr, 0, seed);
  EXPECT_GE(bbr, 0.95 * cubic) << "seed " << seed;
  EXPECT_GE(bbr, 0.80 * double(kBottleneckBytes)) << "seed " << seed;
}

// A low-RTT path whose datagrams arrive with up to 3 ms of jitter (so out of order), 5 % of them held back
// a further 5 ms and 5 % duplicated: at least half the rate of the same path without any of that. Twice:
// with 1 ms one way, and with 50 us one way and 10 ms of hold-back (what the Host's simulation does on
// loopback), where the jitter is many times the path's own round trip.
TEST(CongestionControlBbr, JitterReorderingDuplication_HalfTheJitterFreeRate) {
  const uint64_t seed = test_seed(64);
  for (auto [one_way, hold_back] :
       {std::pair{Duration(milliseconds(1)), Duration(milliseconds(5))},
        std::pair{Duration(std::chrono::microseconds(50)), Duration(milliseconds(10))}}) {
    for (CongestionAlgorithm alg : {CongestionAlgorithm::kCubic, CongestionAlgorithm::kBbr}) {
      PairOptions smooth = bottleneck_path(alg, one_way);
      PairOptions rough = smooth;
      rough.client_to_server.jitter = milliseconds(3);
      rough.client_to_server.reorder = 0.05;
      rough.client_to_server.reorder_delay = hold_back;
      rough.client_to_server.duplicate = 0.05;
      const double base = transfer_rate(smooth, seed);
      const double jittery = transfer_rate(rough, seed);
      std::printf(
          "[ cc ] %s, 10 MB/s bottleneck, %lld us one way: %.2f MB/s; with 3 ms jitter, 5%% held back %lld "
          "ms, 5%% duplicated: %.2f MB/s (%.0f%%)\n",
          name_of(alg), (long long)std::chrono::duration_cast<std::chrono::microseconds>(one_way).count(),
          base / 1e6, (long long)std::chrono::duration_cast<std::chrono::milliseconds>(hold_back).count(),
          jittery / 1e6, jittery / base * 100);
      if (alg == CongestionAlgorithm::kBbr) {
        EXPECT_GE(jittery, 0.50 * base) << "seed " << seed;
      }
    }
  }
}

// Two flows through one bottleneck, started together; their goodput over the last 20 s of 25.
std::pair<double, double> share(CongestionAlgorithm first, CongestionAlgorithm second, uint64_t seed,
                                Duration one_way, size_t queue) {
  const uint64_t bw = 50'000'000;
  EndpointConfig cfg1, cfg2;
  cfg1.connection.congestion = first;
  cfg2.connection.congestion = second;
  LinkConfig up;
  up.delay = one_way;
  up.bandwidth_bps = bw;
  up.queue_bytes = queue;
  LinkConfig down;
  down.delay = one_way;
  const std::array<uint64_t, 2> got = two_flows(seed, cfg1, cfg2, up, down, seconds(5), seconds(25));
  const double link = double(bw) / 8;
  const std::pair<double, double> shares{double(got[0]) / 20 / link, double(got[1]) / 20 / link};
  std::printf(
      "[ cc ] %s and %s through one 50 Mbit/s bottleneck (%lld ms RTT, %zu kB queue): %.0f%% and %.0f%%\n",
      name_of(first), name_of(second),
      (long long)std::chrono::duration_cast<std::chrono::milliseconds>(one_way * 2).count(), queue / 1000,
      shares.first * 100, shares.second * 100);
  return shares;
}

// Two BBR flows started together converge on a fair share. Over four seeds (the convergence depends on
// where each starts its probing cycle): the smaller share is 42 % on average and never below 35 %.
TEST(CongestionControlBbr, TwoBbrFlows_ShareTheBottleneck) {
  double smaller_sum = 0;
  const uint64_t seeds[] = {65, 1, 2, 3};
  for (uint64_t fixed : seeds) {
    const uint64_t seed = test_seed(fixed);
    auto [a, b] =
        share(CongestionAlgorithm::kBbr, CongestionAlgorithm::kBbr, seed, milliseconds(20), 250'000);
    EXPECT_GE(std::min(a, b), 0.35) << "seed " << seed;
    EXPECT_GE(a + b, 0.85) << "seed " << seed;
    smaller_sum += std::min(a, b);
  }
  EXPECT_GE(smaller_sum / 4, 0.42);
}

// A loss-based flow keeps a real share next to BBR, with a shallow queue (a quarter of the path's
// bandwidth-delay product) and a deep one (twice it).
TEST(CongestionControlBbr, CubicNextToBbr_NotStarved) {
  const uint64_t seed = test_seed(66);
  for (size_t queue : {62'500, 500'000}) {
    auto [bbr, cubic] =
        share(CongestionAlgorithm::kBbr, CongestionAlgorithm::kCubic, seed, milliseconds(20), queue);
    EXPECT_GE(cubic, 0.15) << "queue " << queue << " seed " << seed;
    EXPECT_GE(bbr + cubic, 0.80) << "queue " << queue << " seed " << seed;
  }
}

}  // namespace
}  // namespace peerlink::sim
