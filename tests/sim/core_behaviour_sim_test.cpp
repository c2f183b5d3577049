// Behaviours of the connection core the issue names one by one: graceful close, key updates, path MTU
// probing, very large messages, lanes, the bounded send buffer and unreliable fragmentation.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::ReceivedMessage;
using protocol::SendResult;
namespace flags = protocol::send_flags;

PairOptions lossy(double loss, Duration one_way = milliseconds(10)) {
  PairOptions o;
  for (LinkConfig* l : {&o.client_to_server, &o.server_to_client}) {
    l->loss = loss;
    l->delay = one_way;
    l->jitter = milliseconds(2);
  }
  return o;
}

TEST(Linger, CloseRightAfterSending_PeerGetsEveryMessageBeforeTheClose) {
  SimPair p(test_seed(40), lossy(0.05));
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  const int kMessages = 500;
  for (int i = 0; i < kMessages; ++i) {
    std::vector<uint8_t> m(1000 + i, uint8_t(i));
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  }
  c.close(p.cc, 1042, "done here", /*linger=*/true, p.net.now());
  int received = 0, received_before_close = -1;
  p.net.run_for(
      seconds(30), [&] { return received_before_close >= 0; },
      [&] {
        ReceivedMessage m;
        while (p.net.endpoint(p.server).receive(p.sc, m)) {
          ASSERT_EQ(m.data.size(), size_t(1000 + received)) << p.where();
          ASSERT_EQ(m.data[0], uint8_t(received));
          ++received;
        }
        p.pump_events();
        if (p.server_state == ConnectionState::kClosed && received_before_close < 0) {
          received_before_close = received;
        }
      });
  EXPECT_EQ(received_before_close, kMessages) << p.where();
  EXPECT_EQ(p.server_reason, 1042u);
  // The closing side frees everything once its CLOSE is out and the drain period passed.
  p.net.run_for(seconds(5));
  EXPECT_EQ(p.net.endpoint(p.client).connection_count(), 0u);
}

TEST(ImmediateClose, PeerSeesReasonWithinAFewRoundTrips) {
  SimPair p(test_seed(41), lossy(0.0));
  ASSERT_TRUE(p.connect()) << p.where();
  Instant t0 = p.net.now();
  p.net.endpoint(p.client).close(p.cc, 2001, "crashed", /*linger=*/false, p.net.now());
  p.net.run_for(
      seconds(5), [&] { return p.server_state == ConnectionState::kClosed; }, [&] { p.pump_events(); });
  EXPECT_EQ(p.server_state, ConnectionState::kClosed);
  EXPECT_EQ(p.server_reason, 2001u);
  EXPECT_LE(p.net.now() - t0, milliseconds(50)) << p.where();
}

TEST(IdleTimeout, PathCutBothWays_BothSidesEndWithRemoteTimeout) {
  PairOptions o = lossy(0.0);
  o.client.connection.idle_timeout = o.server.connection.idle_timeout = seconds(5);
  o.client.connection.keepalive_interval = o.server.connection.keepalive_interval = seconds(1);
  SimPair p(test_seed(42), o);
  ASSERT_TRUE(p.connect()) << p.where();
  // Healthy but silent: keepalives hold it open far beyond the idle timeout.
  p.net.run_for(seconds(25), {}, [&] { p.pump_events(); });
  EXPECT_EQ(p.client_state, ConnectionState::kConnected);
  EXPECT_EQ(p.server_state, ConnectionState::kConnected);
  Instant cut = p.net.now();
  p.net.link(p.client, p.server).loss = 1.0;
  p.net.link(p.server, p.client).loss = 1.0;
  p.net.run_for(
      seconds(20),
      [&] {
        return p.client_state == ConnectionState::kClosed && p.server_state == ConnectionState::kClosed;
      },
      [&] { p.pump_events(); });
  EXPECT_EQ(p.client_reason, uint32_t(EndReason::kRemoteTimeout));
  EXPECT_EQ(p.server_reason, uint32_t(EndReason::kRemoteTimeout));
  EXPECT_GE(p.net.now() - cut, seconds(4));
  EXPECT_LE(p.net.now() - cut, seconds(7)) << p.where();
}

TEST(KeyUpdate, SmallPacketBudget_ManyUpdatesAndTheTransferStaysExact) {
  PairOptions o = lossy(0.02);
  for (LinkConfig* l : {&o.client_to_server, &o.server_to_client}) {
    l->reorder = 0.05;
    l->reorder_delay = milliseconds(3);
  }
  o.client.connection.key_update_packets = o.server.connection.key_update_packets = 500;
  SimPair p(test_seed(43), o);
  ASSERT_TRUE(p.connect()) << p.where();
  TransferResult r = bulk_transfer(p, 20'000'000, 40'000, seconds(600));
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  auto cs = p.net.endpoint(p.client).stats(p.cc, p.net.now());
  auto ss = p.net.endpoint(p.server).stats(p.sc, p.net.now());
  EXPECT_GT(cs->key_updates, 10u);
  EXPECT_GT(ss->key_updates, 10u);
  EXPECT_EQ(cs->packets_rejected_auth + ss->packets_rejected_auth, 0u)
      << "no packet may fail across an update";
}

struct MtuCase {
  size_t max_packet, link_mtu, expect_low, expect_high;
};

class PathMtu : public ::testing::TestWithParam<MtuCase> {};

TEST_P(PathMtu, ProbesUpToWhatThePathCarries) {
  MtuCase c = GetParam();
  PairOptions o = lossy(0.0);
  o.client.connection.max_packet_size = o.server.connection.max_packet_size = c.max_packet;
  o.client_to_server.mtu = o.server_to_client.mtu = c.link_mtu;
  SimPair p(test_seed(44), o);
  ASSERT_TRUE(p.connect()) << p.where();
  TransferResult r = bulk_transfer(p, 3'000'000, 10'000, seconds(120));
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  size_t size = p.net.endpoint(p.client).stats(p.cc, p.net.now())->packet_size;
  EXPECT_GE(size, c.expect_low) << p.where();
  EXPECT_LE(size, c.expect_high) << p.where();
}

INSTANTIATE_TEST_SUITE_P(Sizes, PathMtu,
                         ::testing::Values(MtuCase{1452, 1400, 1385, 1400}, MtuCase{1452, 1500, 1452, 1452},
                                           MtuCase{1200, 1500, 1200, 1200}),
                         [](const auto& info) {
                           return "Max" + std::to_string(info.param.max_packet) + "Link" +
                                  std::to_string(info.param.link_mtu);
                         });

TEST(LargeMessage, SixtyFourMebibytes_ArrivesIntactThroughLoss) {
  PairOptions o = lossy(0.01, milliseconds(5));
  o.client_to_server.bandwidth_bps = o.server_to_client.bandwidth_bps = 1'000'000'000;
  o.client_to_server.queue_bytes = o.server_to_client.queue_bytes = 2'000'000;
  SimPair p(test_seed(45), o);
  ASSERT_TRUE(p.connect()) << p.where();
  std::vector<uint8_t> big(64u << 20);
  crypto::SeededRandom(7).fill(big.data(), big.size());
  Sha256 want;
  want.update(big.data(), big.size());
  std::string want_hex = want.hex();
  ASSERT_EQ(p.net.endpoint(p.client).send(p.cc, big.data(), big.size(), flags::kReliable, 0, p.net.now()),
            SendResult::kOk);
  big.assign(1, 0);
  std::string got_hex;
  size_t got_size = 0;
  p.net.run_for(
      seconds(600), [&] { return got_size > 0; },
      [&] {
        ReceivedMessage m;
        if (p.net.endpoint(p.server).receive(p.sc, m)) {
          got_size = m.data.size();
          Sha256 h;
          h.update(m.data.data(), m.data.size());
          got_hex = h.hex();
        }
      });
  EXPECT_EQ(got_size, size_t(64u << 20)) << p.where();
  EXPECT_EQ(got_hex, want_hex);
  uint8_t one = 1;
  EXPECT_EQ(p.net.endpoint(p.client).send(p.cc, &one, 0, flags::kReliable, 0, p.net.now()), SendResult::kOk)
      << "zero-length messages are messages too";
}

TEST(Lanes, UrgentLaneOvertakesABacklogOnABulkLane) {
  PairOptions o = lossy(0.0);
  o.client_to_server.bandwidth_bps = 20'000'000;
  o.client_to_server.queue_bytes = 200'000;
  SimPair p(test_seed(46), o);
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  ASSERT_TRUE(c.configure_lanes(p.cc, {protocol::LaneConfig{1, 1}, protocol::LaneConfig{0, 1}}));
  std::vector<uint8_t> bulk(100'000, 1);
  for (int i = 0; i < 40; ++i)
    ASSERT_EQ(c.send(p.cc, bulk.data(), bulk.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  uint8_t urgent[32] = {2};
  ASSERT_EQ(c.send(p.cc, urgent, sizeof urgent, flags::kReliable | flags::kNoNagle, 1, p.net.now()),
            SendResult::kOk);
  EXPECT_EQ(c.send(p.cc, urgent, sizeof urgent, flags::kReliable, 2, p.net.now()), SendResult::kInvalidLane);
  int bulk_before_urgent = -1, bulk_seen = 0;
  p.net.run_for(
      seconds(30), [&] { return bulk_seen == 40; },
      [&] {
        ReceivedMessage m;
        while (p.net.endpoint(p.server).receive(p.sc, m)) {
          if (m.lane == 1) bulk_before_urgent = bulk_seen;
          if (m.lane == 0) ++bulk_seen;
        }
      });
  // 4 MB of bulk takes ~1.6 s at 20 Mbit/s; the urgent message must not wait behind it.
  EXPECT_GE(bulk_before_urgent, 0) << p.where();
  EXPECT_LE(bulk_before_urgent, 2) << p.where();
}

TEST(SendBuffer, ReceiverNeverReads_SendEventuallyReportsLimitExceeded_ThenAllArrives) {
  PairOptions o = lossy(0.0);
  o.client.connection.send_buffer_limit = 2'000'000;
  o.server.connection.receive_queue_limit = 1'000'000;
  o.server.connection.lane_receive_window = o.server.connection.connection_receive_window = 500'000;
  SimPair p(test_seed(47), o);
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  std::vector<uint8_t> m(10'000, 3);
  int accepted = 0;
  bool limited = false;
  p.net.run_for(
      seconds(10), [&] { return limited; },
      [&] {
        for (int i = 0; i < 100 && !limited; ++i) {
          SendResult r = c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now());
          if (r == SendResult::kLimitExceeded) limited = true;
          if (r == SendResult::kOk) ++accepted;
        }
      });
  ASSERT_TRUE(limited) << p.where();
  EXPECT_LE(accepted * m.size(), 2'000'000u + 1'000'000u + 500'000u);
  int received = 0;
  p.net.run_for(
      seconds(60), [&] { return received == accepted; },
      [&] {
        ReceivedMessage rm;
        while (p.net.endpoint(p.server).receive(p.sc, rm)) {
          ASSERT_EQ(rm.data, m);
          ++received;
        }
      });
  EXPECT_EQ(received, accepted) << p.where();
}

TEST(Unreliable, FragmentedMessagesThroughLoss_DeliveredWholeOrNotAtAll) {
  SimPair p(test_seed(48), lossy(0.03));
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  const int kCount = 300;
  int sent = 0;
  std::map<size_t, int> seen;  // by size: every message has its own
  int delivered = 0;
  p.net.run_for(
      seconds(60), [&] { return sent == kCount && c.stats(p.cc, p.net.now())->queued_bytes == 0; },
      [&] {
        if (sent < kCount && c.stats(p.cc, p.net.now())->queued_bytes < 200'000) {
          size_t size = 1000 + size_t(sent) * 200 % 64000;  // up to ~64 KB: up to ~55 fragments
          std::vector<uint8_t> m(size, uint8_t(sent));
          m[0] = uint8_t(size >> 8);
          m[1] = uint8_t(size);
          ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kUnreliable, 0, p.net.now()), SendResult::kOk);
          ++sent;
        }
        ReceivedMessage r;
        while (p.net.endpoint(p.server).receive(p.sc, r)) {
          ASSERT_FALSE(r.reliable);
          ASSERT_EQ(size_t(r.data[0]) << 8 | r.data[1], r.data.size() & 0xffff) << "whole, never partial";
          for (size_t i = 2; i < r.data.size(); ++i)
            ASSERT_EQ(r.data[i], r.data[2]) << "never corrupted";
          ASSERT_EQ(++seen[r.data.size()], 1) << "never duplicated";
          ++delivered;
        }
      });
  p.net.run_for(seconds(1));
  EXPECT_EQ(sent, kCount);
  EXPECT_GT(delivered, kCount / 4) << p.where();
  EXPECT_LT(delivered, kCount) << "3% loss of ~30 fragments each drops many messages";
  std::vector<uint8_t> too_big(64 * 1024 + 1);
  EXPECT_EQ(c.send(p.cc, too_big.data(), too_big.size(), flags::kUnreliable, 0, p.net.now()),
            SendResult::kMessageTooLarge);
}

}  // namespace
}  // namespace peerlink::sim

namespace peerlink::sim {
namespace {

TEST(Lanes, EqualPriorityWeightsThreeToOne_ShareTheBottleneckAboutThreeToOne) {
  PairOptions o;
  o.client_to_server.bandwidth_bps = 20'000'000;
  o.client_to_server.queue_bytes = 100'000;
  SimPair p(test_seed(49), o);
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  ASSERT_TRUE(c.configure_lanes(p.cc, {protocol::LaneConfig{0, 3}, protocol::LaneConfig{0, 1}}));
  std::vector<uint8_t> m(20'000, 5);
  uint64_t bytes[2] = {0, 0};
  Instant measure_from = p.net.now() + seconds(2);
  p.net.run_for(seconds(10), {}, [&] {
    // Keep each lane backlogged on its own (refilling both equally would impose a 1:1 ratio).
    auto st = c.stats(p.cc, p.net.now());
    for (uint32_t lane = 0; lane < 2; ++lane) {
      uint64_t queued = lane < st->lane_queued_bytes.size() ? st->lane_queued_bytes[lane] : 0;
      for (; queued < 1'000'000; queued += m.size())
        c.send(p.cc, m.data(), m.size(), flags::kReliable, lane, p.net.now());
    }
    ReceivedMessage r;
    while (p.net.endpoint(p.server).receive(p.sc, r)) {
      if (p.net.now() >= measure_from) bytes[r.lane] += r.data.size();
    }
  });
  double ratio = double(bytes[0]) / double(std::max<uint64_t>(bytes[1], 1));
  std::printf("[ sim ] lane bytes %llu : %llu = %.2f\n", (unsigned long long)bytes[0],
              (unsigned long long)bytes[1], ratio);
  EXPECT_GT(ratio, 2.0) << p.where();
  EXPECT_LT(ratio, 4.0) << p.where();
}

TEST(NoDelay, UnreliableThatCannotGoNow_IsDroppedNotQueued) {
  SimPair p(test_seed(50), PairOptions{});
  p.start();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  uint8_t m[100] = {};
  EXPECT_EQ(c.send(p.cc, m, sizeof m, flags::kNoDelay, 0, p.net.now()), SendResult::kDropped)
      << "not connected yet: a no-delay message cannot go now";
  ASSERT_TRUE(p.net.run_for(
      seconds(5), [&] { return p.client_state == ConnectionState::kConnected; }, [&] { p.pump_events(); }));
  EXPECT_EQ(c.send(p.cc, m, sizeof m, flags::kNoDelay, 0, p.net.now()), SendResult::kOk);
  // Fill the congestion window with reliable data: now no-delay messages are dropped and counted.
  std::vector<uint8_t> big(1'000'000, 1);
  c.send(p.cc, big.data(), big.size(), flags::kReliable | flags::kNoNagle, 0, p.net.now());
  p.net.run_for(milliseconds(1));
  int dropped = 0;
  for (int i = 0; i < 10; ++i) {
    if (c.send(p.cc, m, sizeof m, flags::kNoDelay, 0, p.net.now()) == SendResult::kDropped) ++dropped;
  }
  // The window may have room for one more small message; after that everything waits, so is dropped.
  EXPECT_GE(dropped, 9);
  EXPECT_EQ(c.stats(p.cc, p.net.now())->unreliable_dropped, uint64_t(1 + dropped));
}

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

TEST(Keepalive, IntervalLongerThanTheIdleTimeout_IsCappedSoAnIdleHealthyConnectionStays) {
  PairOptions o;
  o.client.connection.idle_timeout = o.server.connection.idle_timeout = seconds(4);
  o.client.connection.keepalive_interval = o.server.connection.keepalive_interval = seconds(60);
  SimPair p(test_seed(52), o);
  ASSERT_TRUE(p.connect()) << p.where();
  p.net.run_for(seconds(30), {}, [&] { p.pump_events(); });
  EXPECT_EQ(p.client_state, ConnectionState::kConnected) << p.where();
  EXPECT_EQ(p.server_state, ConnectionState::kConnected) << p.where();
}

}  // namespace
}  // namespace peerlink::sim
