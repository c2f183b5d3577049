// Bulk transfers through bad networks, checked byte for byte.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

constexpr uint64_t kFiftyMB = 50ull * 1000 * 1000;

struct LossCase {
  double loss;
  uint64_t seed;
};

class BulkTransferLoss : public ::testing::TestWithParam<LossCase> {};

TEST_P(BulkTransferLoss, FiftyMegabytes_ExactSha256) {
  const LossCase c = GetParam();
  PairOptions o;
  o.client_to_server.loss = o.server_to_client.loss = c.loss;
  o.client_to_server.delay = o.server_to_client.delay = milliseconds(5);
  o.client_to_server.bandwidth_bps = o.server_to_client.bandwidth_bps = 1'000'000'000;
  o.client_to_server.queue_bytes = o.server_to_client.queue_bytes = 2'000'000;
  SimPair p(test_seed(c.seed), o);
  ASSERT_TRUE(p.connect()) << p.where();
  TransferResult r = bulk_transfer(p, kFiftyMB, 64 * 1024, seconds(3600));
  std::printf("[ sim ] loss %.0f%% seed %llu: %llu bytes in %.2f s simulated\n", c.loss * 100,
              (unsigned long long)p.net.seed(), (unsigned long long)r.bytes,
              std::chrono::duration<double>(r.elapsed).count());
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash) << p.where();
  EXPECT_EQ(r.bytes, kFiftyMB);
}

INSTANTIATE_TEST_SUITE_P(Loss, BulkTransferLoss,
                         ::testing::Values(LossCase{0.0, 10}, LossCase{0.01, 11}, LossCase{0.10, 12},
                                           LossCase{0.30, 13}),
                         [](const auto& info) {
                           return "Loss" + std::to_string(int(info.param.loss * 100));
                         });

}  // namespace
}  // namespace peerlink::sim

namespace peerlink::sim {
namespace {

PairOptions path(Duration one_way, uint64_t bandwidth_bps = 0, size_t queue = 0) {
  PairOptions o;
  for (LinkConfig* l : {&o.client_to_server, &o.server_to_client}) {
    l->delay = one_way;
    l->bandwidth_bps = bandwidth_bps;
    l->queue_bytes = queue;
  }
  return o;
}

TEST(BulkTransfer, ReorderAndDuplication_ExactSha256) {
  PairOptions o = path(milliseconds(10), 200'000'000, 1'000'000);
  for (LinkConfig* l : {&o.client_to_server, &o.server_to_client}) {
    l->reorder = 0.2;
    l->reorder_delay = milliseconds(7);
    l->duplicate = 0.2;
    l->jitter = milliseconds(4);
  }
  SimPair p(test_seed(20), o);
  ASSERT_TRUE(p.connect()) << p.where();
  TransferResult r = bulk_transfer(p, 20'000'000, 50'000, seconds(600));
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash) << p.where();
  auto s = p.net.endpoint(p.server).stats(p.sc, p.net.now());
  EXPECT_GT(s->packets_duplicate, 0u) << "duplicates must be detected and dropped";
}

TEST(BulkTransfer, FiveSecondBlackhole_RecoversAndCompletes) {
  PairOptions o = path(milliseconds(10), 100'000'000, 500'000);
  SimPair p(test_seed(21), o);
  ASSERT_TRUE(p.connect()) << p.where();
  Instant hole_start = p.net.now() + seconds(1);
  Instant hole_end = hole_start + seconds(5);
  p.net.link(p.client, p.server).blackholes.push_back({hole_start, hole_end});
  p.net.link(p.server, p.client).blackholes.push_back({hole_start, hole_end});
  uint64_t delivered_at_end_of_hole = 0;
  Instant first_delivery_after = protocol::kNever;
  TransferResult r = bulk_transfer(p, 40'000'000, 64 * 1024, seconds(120), 4u << 20, [&] {
    const LinkStats& ls = p.net.link_stats(p.client, p.server);
    if (p.net.now() < hole_end) {
      delivered_at_end_of_hole = ls.delivered;
    } else if (ls.delivered > delivered_at_end_of_hole && first_delivery_after == protocol::kNever) {
      first_delivery_after = p.net.now();
    }
  });
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  EXPECT_EQ(p.client_state, ConnectionState::kConnected) << "a 5 s outage is shorter than the idle timeout";
  // Probes are capped at max_probe_timeout (2 s): traffic resumes within that of the outage's end.
  EXPECT_LE(first_delivery_after - hole_end, seconds(2) + milliseconds(100)) << p.where();
}

TEST(BulkTransfer, Corruption_EveryCorruptPacketRejectedAndCounted_TransferExact) {
  PairOptions o = path(milliseconds(5), 200'000'000, 1'000'000);
  SimPair p(test_seed(22), o);
  ASSERT_TRUE(p.connect()) << p.where();
  p.net.link(p.client, p.server).corrupt = 0.05;
  p.net.link(p.server, p.client).corrupt = 0.05;
  TransferResult r = bulk_transfer(p, 20'000'000, 64 * 1024, seconds(600));
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  // Let stragglers land, then compare: every corrupted datagram failed authentication.
  p.net.run_for(milliseconds(200));
  uint64_t corrupted =
      p.net.link_stats(p.client, p.server).corrupted + p.net.link_stats(p.server, p.client).corrupted;
  uint64_t rejected = p.net.endpoint(p.server).stats(p.sc, p.net.now())->packets_rejected_auth +
                      p.net.endpoint(p.client).stats(p.cc, p.net.now())->packets_rejected_auth;
  EXPECT_GT(corrupted, 100u);
  EXPECT_EQ(rejected, corrupted) << p.where();
}

TEST(CongestionControl, Bottleneck100Mbit50msRtt_AtLeast90PercentUtilisedWithoutRunawayQueue) {
  const uint64_t bw = 100'000'000;
  const size_t bdp = size_t(bw / 8 * 0.05);  // 625 kB
  PairOptions o = path(milliseconds(25), bw, bdp);
  o.server_to_client.bandwidth_bps = 0;  // acks travel freely
  SimPair p(test_seed(23), o);
  ASSERT_TRUE(p.connect()) << p.where();
  // Warm up (slow start and its overshoot), then measure a steady 20 s window.
  bulk_transfer(p, 60'000'000, 64 * 1024, seconds(30));
  const LinkStats before = p.net.link_stats(p.client, p.server);
  Instant t0 = p.net.now();
  TransferResult r = bulk_transfer(p, 235'000'000, 64 * 1024, seconds(60));
  const LinkStats after = p.net.link_stats(p.client, p.server);
  double secs = std::chrono::duration<double>(p.net.now() - t0).count();
  double goodput_bps = double(r.bytes) * 8 / secs;
  double wire_bps = double(after.bytes_delivered - before.bytes_delivered) * 8 / secs;
  double mean_queue_ms =
      (after.queue_delay_sum_s - before.queue_delay_sum_s) / double(after.sent - before.sent) * 1000;
  double drop_rate = double(after.queue_dropped - before.queue_dropped) / double(after.sent - before.sent);
  std::printf("[ sim ] goodput %.1f Mbit/s, wire %.1f Mbit/s, mean queue %.1f ms, drops %.3f%%\n",
              goodput_bps / 1e6, wire_bps / 1e6, mean_queue_ms, drop_rate * 100);
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  EXPECT_GE(wire_bps, 0.90 * double(bw)) << p.where();
  // A loss-based controller fills the buffer but must back off on drops: the queue stays below the buffer on
  // average, drops stay rare and the sender's RTT estimate stays well under twice the path's.
  EXPECT_LT(mean_queue_ms, 45.0) << p.where();
  EXPECT_LT(drop_rate, 0.02) << p.where();
  auto st = p.net.endpoint(p.client).stats(p.cc, p.net.now());
  EXPECT_LT(st->rtt_smoothed, milliseconds(100)) << p.where();
}

TEST(CongestionControl, TwoFlowsShareABottleneck_EachWithinTwiceItsFairShare) {
  const uint64_t bw = 50'000'000;
  const uint64_t seed = test_seed(24);
  LinkConfig up;
  up.delay = milliseconds(20);
  up.bandwidth_bps = bw;
  up.queue_bytes = size_t(bw / 8 * 0.04);
  LinkConfig down;
  down.delay = milliseconds(20);
  const std::array<uint64_t, 2> got =
      two_flows(seed, EndpointConfig{}, EndpointConfig{}, up, down, seconds(5), seconds(35));
  double fair = double(got[0] + got[1]) / 2;
  std::printf("[ sim ] flow 1 %.1f Mbit/s, flow 2 %.1f Mbit/s (seed %llu)\n", double(got[0]) * 8 / 30 / 1e6,
              double(got[1]) * 8 / 30 / 1e6, (unsigned long long)seed);
  EXPECT_GT(double(got[0] + got[1]) * 8 / 30, 0.8 * double(bw)) << "seed " << seed;
  for (uint64_t g : got) {
    EXPECT_GE(double(g), fair / 2) << "seed " << seed;
    EXPECT_LE(double(g), fair * 2) << "seed " << seed;
  }
}

}  // namespace
}  // namespace peerlink::sim

namespace peerlink::sim {
namespace {

TEST(ReceiveQueue, UnreadUnreliableMessages_BoundedByTheReceiveQueueLimit) {
  PairOptions o;
  o.server.connection.receive_queue_limit = 1'000'000;
  SimPair p(test_seed(25), o);
  ASSERT_TRUE(p.connect()) << p.where();
  std::vector<uint8_t> msg(1000, 7);
  int queued = 0;
  // The server never reads while 5 MB of unreliable messages arrive.
  p.net.run_for(
      seconds(20), [&] { return queued >= 5000; },
      [&] {
        p.pump_events();
        for (int i = 0; i < 50 && queued < 5000; ++i) {
          auto st = p.net.endpoint(p.client).stats(p.cc, p.net.now());
          if (st->queued_bytes > 200'000) break;
          if (p.net.endpoint(p.client).send(p.cc, msg.data(), msg.size(), protocol::send_flags::kUnreliable,
                                            0, p.net.now()) == protocol::SendResult::kOk) {
            ++queued;
          }
        }
      });
  p.net.run_for(seconds(1));
  uint64_t held = 0;
  protocol::ReceivedMessage m;
  while (p.net.endpoint(p.server).receive(p.sc, m))
    held += m.data.size();
  auto st = p.net.endpoint(p.server).stats(p.sc, p.net.now());
  EXPECT_EQ(queued, 5000) << p.where();
  EXPECT_LE(held, 1'000'000u) << p.where();
  EXPECT_GT(st->unreliable_dropped, 0u) << p.where();
  EXPECT_EQ(held / 1000 + st->unreliable_dropped, 5000u) << "every message either held or counted as dropped";
  EXPECT_EQ(p.server_state, ConnectionState::kConnected);
}

}  // namespace
}  // namespace peerlink::sim

namespace peerlink::sim {
namespace {

TEST(Robustness, ReplayedTruncatedAndRandomDatagrams_CountedAndTheTransferStaysExact) {
  PairOptions o = path(milliseconds(5), 100'000'000, 500'000);
  SimPair p(test_seed(26), o);
  ASSERT_TRUE(p.connect()) << p.where();
  std::vector<std::vector<uint8_t>> captured;
  p.net.set_tap([&](size_t from, size_t, const std::vector<uint8_t>& d) {
    if (from == p.client && captured.size() < 300 &&
        protocol::peek_packet_kind(d.data(), d.size()) == protocol::PacketKind::kData) {
      captured.push_back(d);
    }
  });
  crypto::SeededRandom junk(p.net.seed());
  uint64_t replays = 0, truncated = 0;
  TransferResult r = bulk_transfer(p, 10'000'000, 30'000, seconds(120), 2u << 20, [&] {
    if (captured.size() < 300 || replays >= 300) return;
    // Everything captured is old by now: replay it, truncated copies of it, and random bytes.
    for (const auto& d : captured) {
      p.net.inject(p.client, p.server, d);
      ++replays;
      std::vector<uint8_t> cut(d.begin(), d.begin() + std::ptrdiff_t(junk.next_u32() % d.size()));
      p.net.inject(p.client, p.server, cut);
      ++truncated;
      std::vector<uint8_t> noise(1 + junk.next_u32() % 1400);
      junk.fill(noise.data(), noise.size());
      p.net.inject(p.client, p.server, noise);
    }
  });
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  EXPECT_EQ(replays, 300u);
  auto s = p.net.endpoint(p.server).stats(p.sc, p.net.now());
  const auto& counters = p.net.endpoint(p.server).counters();
  // Every replay is caught as a duplicate before decryption (so are truncated copies whose header survived).
  EXPECT_GE(s->packets_duplicate, replays) << p.where();
  uint64_t dropped_elsewhere = s->packets_rejected_auth + counters.invalid_datagrams +
                               counters.unknown_connection + counters.wrong_source +
                               counters.handshake_failures + counters.retries_sent;
  EXPECT_GE(dropped_elsewhere + s->packets_duplicate, replays + truncated) << p.where();
  EXPECT_EQ(p.server_state, ConnectionState::kConnected);
  EXPECT_EQ(p.client_state, ConnectionState::kConnected);
}

TEST(Soak, RandomNetworks_TransferExact) {
  crypto::SeededRandom pick(test_seed(27));
  for (int i = 0; i < soak_seeds(3); ++i) {
    uint64_t seed = pick.next_u64() % 1'000'000;
    PairOptions o;
    crypto::SeededRandom r(seed);
    auto frac = [&](double max) { return double(r.next_u32() % 1000) / 1000.0 * max; };
    for (LinkConfig* l : {&o.client_to_server, &o.server_to_client}) {
      l->loss = frac(0.2);
      l->delay = milliseconds(1 + r.next_u32() % 50);
      l->jitter = milliseconds(r.next_u32() % 10);
      l->reorder = frac(0.1);
      l->duplicate = frac(0.1);
    }
    o.ik = r.next_u32() % 2 == 0;
    SimPair p(seed, o);
    std::printf("[ soak ] seed %llu loss %.2f/%.2f %s\n", (unsigned long long)seed, o.client_to_server.loss,
                o.server_to_client.loss, o.ik ? "IK" : "XX");
    ASSERT_TRUE(p.connect(seconds(60))) << p.where();
    TransferResult t = bulk_transfer(p, 2'000'000, 1 + r.next_u32() % 100'000, seconds(3600));
    ASSERT_TRUE(t.completed) << p.where();
    EXPECT_EQ(t.sent_hash, t.received_hash) << p.where();
  }
}

}  // namespace
}  // namespace peerlink::sim

namespace peerlink::sim {
namespace {

TEST(CongestionControl, NewRenoOnTheSameBottleneck_AlsoFillsTheLink) {
  PairOptions o;
  const uint64_t bw = 50'000'000;
  o.client_to_server.delay = o.server_to_client.delay = milliseconds(10);
  o.client_to_server.bandwidth_bps = bw;
  o.client_to_server.queue_bytes = size_t(bw / 8 * 0.02);
  o.client.connection.congestion = protocol::CongestionAlgorithm::kNewReno;
  SimPair p(test_seed(51), o);
  ASSERT_TRUE(p.connect()) << p.where();
  bulk_transfer(p, 20'000'000, 64 * 1024, seconds(30));
  const LinkStats before = p.net.link_stats(p.client, p.server);
  Instant t0 = p.net.now();
  TransferResult r = bulk_transfer(p, 60'000'000, 64 * 1024, seconds(60));
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  const LinkStats after = p.net.link_stats(p.client, p.server);
  double wire_bps = double(after.bytes_delivered - before.bytes_delivered) * 8 /
                    std::chrono::duration<double>(p.net.now() - t0).count();
  std::printf("[ sim ] NewReno wire %.1f Mbit/s of %.0f\n", wire_bps / 1e6, double(bw) / 1e6);
  EXPECT_GE(wire_bps, 0.85 * double(bw)) << p.where();
}

}  // namespace
}  // namespace peerlink::sim

namespace peerlink::sim {
namespace {

TEST(Reordering, PathThatReorders_LearnedSoThroughputStaysNearTheInOrderPath) {
  auto run = [](double reorder, uint64_t& spurious) {
    PairOptions o = path(milliseconds(10), 100'000'000, 1'000'000);
    for (LinkConfig* l : {&o.client_to_server, &o.server_to_client}) {
      l->reorder = reorder;
      l->reorder_delay = milliseconds(4);  // overtaken by dozens of packets at this rate
    }
    SimPair p(test_seed(28), o);
    EXPECT_TRUE(p.connect()) << p.where();
    TransferResult r = bulk_transfer(p, 30'000'000, 64 * 1024, seconds(600));
    EXPECT_TRUE(r.completed) << p.where();
    EXPECT_EQ(r.sent_hash, r.received_hash);
    spurious = p.net.endpoint(p.client).stats(p.cc, p.net.now())->packets_lost_spurious;
    return std::chrono::duration<double>(r.elapsed).count();
  };
  uint64_t spurious_in_order = 0, spurious = 0;
  double in_order = run(0.0, spurious_in_order);
  double reordered = run(0.05, spurious);
  std::printf("[ sim ] 30 MB: in order %.2f s, 5%% reordered %.2f s, %llu spurious losses\n", in_order,
              reordered, (unsigned long long)spurious);
  EXPECT_EQ(spurious_in_order, 0u);
  EXPECT_GT(spurious, 0u) << "the reordering was noticed";
  EXPECT_LT(reordered, 1.5 * in_order) << "after learning the reordering, it is not treated as loss";
}

// The loss thresholds that spurious losses raised come back to RFC 9002's (3 packets, 9/8 RTT) once the
// path has not reordered for 10 s; on a path that goes on reordering they stay raised.
TEST(Reordering, ReorderingStops_LossThresholdsComeBackAfterTenQuietSeconds) {
  for (bool keeps_reordering : {true, false}) {
    SCOPED_TRACE(keeps_reordering ? "keeps reordering" : "stops reordering");
    PairOptions o = path(milliseconds(10), 20'000'000, 1'000'000);
    for (LinkConfig* l : {&o.client_to_server, &o.server_to_client}) {
      l->reorder = 0.05;
      l->reorder_delay = milliseconds(4);
    }
    SimPair p(test_seed(29), o);
    ASSERT_TRUE(p.connect()) << p.where();
    TransferResult first = bulk_transfer(p, 5'000'000, 64 * 1024, seconds(60));
    ASSERT_TRUE(first.completed) << p.where();
    std::optional<protocol::ConnectionStats> st = p.net.endpoint(p.client).stats(p.cc, p.net.now());
    ASSERT_TRUE(st);
    ASSERT_GT(st->packets_lost_spurious, 0u) << p.where();
    EXPECT_GT(st->loss_threshold_packets, 3u) << p.where();
    EXPECT_GT(st->loss_threshold_rtt_eighths, 9u) << p.where();
    if (!keeps_reordering) {
      p.net.link(p.client, p.server).reorder = 0;
      p.net.link(p.server, p.client).reorder = 0;
    }
    // 12 s more of bulk data: acknowledgements all along, so loss detection runs all along.
    TransferResult more = bulk_transfer(p, uint64_t(1) << 40, 64 * 1024, seconds(12));
    EXPECT_GT(more.bytes, 10u << 20) << p.where();
    st = p.net.endpoint(p.client).stats(p.cc, p.net.now());
    ASSERT_TRUE(st);
    if (keeps_reordering) {
      EXPECT_GT(st->loss_threshold_packets, 3u) << p.where();
      EXPECT_GT(st->loss_threshold_rtt_eighths, 9u) << p.where();
    } else {
      EXPECT_EQ(st->loss_threshold_packets, 3u) << p.where();
      EXPECT_EQ(st->loss_threshold_rtt_eighths, 9u) << p.where();
    }
  }
}

}  // namespace
}  // namespace peerlink::sim
