// Lanes: strict priorities between lanes, weighted sharing within a priority, independent ordering per
// lane, and the lane-count rules of send() and configure_lanes().
#include <map>

#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::LaneConfig;
using protocol::ReceivedMessage;
using protocol::SendResult;
namespace flags = protocol::send_flags;

uint64_t lane_tag(uint32_t lane, uint64_t n) {
  return uint64_t(lane + 1) << 40 | n;
}

// A bottleneck from client to server; acks travel freely.
PairOptions bottleneck(uint64_t bps, size_t queue) {
  PairOptions o;
  o.client_to_server.bandwidth_bps = bps;
  o.client_to_server.queue_bytes = queue;
  return o;
}

// Checks that each lane's reliable messages arrive numbered 1, 2, ... with their own content.
struct LaneOrder {
  std::map<uint32_t, uint64_t> reliable_count;
  std::map<uint32_t, uint64_t> bytes;
  bool failed = false;
  void on_message(const ReceivedMessage& m, const std::string& where) {
    bytes[m.lane] += m.data.size();
    if (!m.reliable) return;
    uint64_t n = ++reliable_count[m.lane];
    if (m.number != n || !check_message(lane_tag(m.lane, n), m.data, m.data.size()) || m.data.size() < 8) {
      ADD_FAILURE() << "lane " << m.lane << " message " << n << " arrived as number " << m.number
                    << " with wrong content; " << where;
      failed = true;
    }
  }
};

TEST(LanePriority, UrgentAndMediumLanesQueuedBehindABulkBacklog_ArriveFirstAndQuickly) {
  SimPair p(test_seed(401), bottleneck(10'000'000, 100'000));
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  // Lane 0 bulk (least urgent), lane 1 urgent, lane 2 medium.
  ASSERT_TRUE(c.configure_lanes(p.cc, {LaneConfig{2, 1}, LaneConfig{0, 1}, LaneConfig{1, 1}}));
  const int kBulk = 40;  // 4 MB: 3.2 s at 10 Mbit/s
  for (int i = 1; i <= kBulk; ++i) {
    std::vector<uint8_t> m = make_message(lane_tag(0, uint64_t(i)), 100'000);
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  }
  LaneOrder order;
  std::map<uint64_t, Instant> urgent_sent;  // by tag
  Duration worst_urgent{};
  int urgent_received = 0, unreliable_urgent_received = 0;
  // Bulk bytes received when the urgent burst / the medium megabyte had fully arrived.
  uint64_t bulk_when_medium_done = 0, bulk_when_first_urgent_burst_done = 0;
  const int kMedium = 10;
  auto read = [&] {
    ReceivedMessage m;
    while (s.receive(p.sc, m)) {
      order.on_message(m, p.where());
      if (m.lane == 1) {
        uint64_t tag = message_tag(m.data);
        auto it = urgent_sent.find(tag);
        ASSERT_NE(it, urgent_sent.end()) << "unknown urgent message";
        worst_urgent = std::max(worst_urgent, p.net.now() - it->second);
        if (m.reliable) {
          if (++urgent_received == 10) bulk_when_first_urgent_burst_done = order.bytes[0];
        } else {
          ++unreliable_urgent_received;
        }
      }
      if (m.lane == 2 && order.reliable_count[2] == kMedium) bulk_when_medium_done = order.bytes[0];
    }
  };
  // Let the backlog fill the window and the bottleneck queue.
  p.net.run_for(milliseconds(300), {}, read);
  ASSERT_LE(order.reliable_count[0], 3u)
      << "more bulk messages through in 300 ms than the link carries (375 kB)?";
  // Medium: 1 MB; urgent: a burst of 10 small messages. Bulk data already in flight cannot be overtaken.
  const uint64_t bulk_at_burst = order.bytes[0];
  const uint64_t in_flight_at_burst = c.stats(p.cc, p.net.now())->bytes_in_flight;
  for (int i = 1; i <= kMedium; ++i) {
    std::vector<uint8_t> m = make_message(lane_tag(2, uint64_t(i)), 100'000);
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 2, p.net.now()), SendResult::kOk);
  }
  uint64_t next_urgent = 1;
  auto send_urgent = [&](uint32_t f) {
    uint64_t tag =
        !(f & flags::kUnreliable) ? lane_tag(1, next_urgent++) : (uint64_t(1) << 60 | next_urgent * 7);
    std::vector<uint8_t> m = make_message(tag, 200);
    urgent_sent[tag] = p.net.now();
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), f, 1, p.net.now()), SendResult::kOk);
  };
  for (int i = 0; i < 10; ++i)
    send_urgent(flags::kReliable | flags::kNoNagle);
  // Then an urgent reliable and an urgent unreliable message every 150 ms while the backlog drains.
  Instant last_urgent = p.net.now();
  int periodic = 0;
  p.net.run_for(
      seconds(30), [&] { return order.reliable_count[0] == uint64_t(kBulk); },
      [&] {
        read();
        if (p.net.now() - last_urgent >= milliseconds(150) && order.reliable_count[0] < uint64_t(kBulk) - 2) {
          last_urgent = p.net.now();
          send_urgent(flags::kReliable | flags::kNoNagle);
          send_urgent(flags::kUnreliable | flags::kNoNagle);
          ++periodic;
        }
      });
  p.net.run_for(milliseconds(500), {}, read);
  ASSERT_FALSE(order.failed);
  EXPECT_EQ(order.reliable_count[0], uint64_t(kBulk)) << p.where();
  EXPECT_EQ(order.reliable_count[2], uint64_t(kMedium)) << p.where();
  EXPECT_EQ(urgent_received, 10 + periodic) << p.where();
  EXPECT_GE(periodic, 10);
  EXPECT_EQ(unreliable_urgent_received, periodic) << "no loss on this path";
  // Strict priority: the medium lane's megabyte and the urgent burst overtook the bulk backlog.
  // (Whole messages are counted: the one partly received at the burst adds up to 100 kB.)
  EXPECT_LE(bulk_when_first_urgent_burst_done, bulk_at_burst + in_flight_at_burst + 100'000) << p.where();
  EXPECT_LE(bulk_when_medium_done, bulk_at_burst + in_flight_at_burst + 100'000) << p.where();
  EXPECT_LT(bulk_when_medium_done, 10 * 100'000u)
      << "most of the 4 MB bulk backlog came after; " << p.where();
  // An urgent message waits at most for what is already in flight: the 80 ms bottleneck queue, the 10 ms
  // path and a packet or two of serialisation.
  EXPECT_LE(worst_urgent, milliseconds(150)) << p.where();
}

TEST(LaneWeights, EqualPriorityThreeToOneWhileBothBacklogged_ShareAboutThreeToOne_ThenOneTakesAll) {
  const uint64_t kBps = 20'000'000;
  SimPair p(test_seed(402), bottleneck(kBps, 100'000));
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  ASSERT_TRUE(c.configure_lanes(p.cc, {LaneConfig{0, 3}, LaneConfig{0, 1}}));
  LaneOrder order;
  uint64_t next[2] = {1, 1};
  bool feed[2] = {true, true};
  auto step = [&] {
    auto st = c.stats(p.cc, p.net.now());
    for (uint32_t lane = 0; lane < 2; ++lane) {
      while (feed[lane] && st->lane_queued_bytes.size() > lane && st->lane_queued_bytes[lane] < 1'000'000) {
        std::vector<uint8_t> m = make_message(lane_tag(lane, next[lane]++), 20'000);
        ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, lane, p.net.now()), SendResult::kOk);
        st = c.stats(p.cc, p.net.now());
      }
      // Lanes appear in the stats once used: prime both.
      if (st->lane_queued_bytes.size() <= lane) {
        std::vector<uint8_t> m = make_message(lane_tag(lane, next[lane]++), 20'000);
        ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, lane, p.net.now()), SendResult::kOk);
        st = c.stats(p.cc, p.net.now());
      }
    }
    ReceivedMessage m;
    while (s.receive(p.sc, m))
      order.on_message(m, p.where());
  };
  p.net.run_for(seconds(1), {}, step);  // slow start and queues settle
  uint64_t b0 = order.bytes[0], b1 = order.bytes[1];
  p.net.run_for(seconds(4), {}, step);
  double share0 = double(order.bytes[0] - b0), share1 = double(order.bytes[1] - b1);
  double ratio = share0 / std::max(share1, 1.0);
  std::printf("[ sim ] seed %llu: weight 3 lane %.2f Mbit/s, weight 1 lane %.2f Mbit/s, ratio %.2f\n",
              (unsigned long long)p.net.seed(), share0 * 8 / 4 / 1e6, share1 * 8 / 4 / 1e6, ratio);
  EXPECT_GE(ratio, 2.0) << p.where();
  EXPECT_LE(ratio, 4.0) << p.where();
  EXPECT_GE((share0 + share1) * 8 / 4, 0.8 * double(kBps)) << "together they fill the link; " << p.where();
  // Lane 0 goes quiet: lane 1 alone gets (nearly) the whole link; sharing is work-conserving.
  feed[0] = false;
  p.net.run_for(seconds(1), {}, step);
  b1 = order.bytes[1];
  p.net.run_for(seconds(2), {}, step);
  double alone = double(order.bytes[1] - b1) * 8 / 2;
  EXPECT_GE(alone, 0.8 * double(kBps)) << p.where();
  EXPECT_FALSE(order.failed);
}

TEST(LanePriority, ReconfiguredWhileBothBacklogged_TheNewlyUrgentLaneTakesTheLink) {
  SimPair p(test_seed(403), bottleneck(10'000'000, 50'000));
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  ASSERT_TRUE(c.configure_lanes(p.cc, {LaneConfig{0, 1}, LaneConfig{0, 1}}));
  LaneOrder order;
  uint64_t next[2] = {1, 1};
  auto step = [&] {
    for (uint32_t lane = 0; lane < 2; ++lane) {
      auto st = c.stats(p.cc, p.net.now());
      if (st->lane_queued_bytes.size() <= lane || st->lane_queued_bytes[lane] < 500'000) {
        std::vector<uint8_t> m = make_message(lane_tag(lane, next[lane]++), 10'000);
        ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, lane, p.net.now()), SendResult::kOk);
      }
    }
    ReceivedMessage m;
    while (s.receive(p.sc, m))
      order.on_message(m, p.where());
  };
  p.net.run_for(seconds(2), {}, step);
  EXPECT_GT(order.bytes[0], 300'000u);
  EXPECT_GT(order.bytes[1], 300'000u);
  ASSERT_TRUE(c.configure_lanes(p.cc, {LaneConfig{1, 1}, LaneConfig{0, 1}}));
  p.net.run_for(milliseconds(300), {}, step);  // what was in flight or being retransmitted drains
  uint64_t b0 = order.bytes[0], b1 = order.bytes[1];
  p.net.run_for(seconds(2), {}, step);
  EXPECT_LT(order.bytes[0] - b0, 20'000u) << "the now less urgent lane must wait; " << p.where();
  EXPECT_GT(order.bytes[1] - b1, 2'000'000u) << p.where();
  EXPECT_FALSE(order.failed);
}

TEST(LaneConfig, SendBeyondTheConfiguredLanes_InvalidLane_AndBadConfigurationsRefused) {
  SimPair p(test_seed(404), PairOptions{});
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  uint8_t b[16] = {};
  // One lane until configured.
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kReliable, 1, p.net.now()), SendResult::kInvalidLane);
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kUnreliable, 1, p.net.now()), SendResult::kInvalidLane);
  EXPECT_EQ(c.send(p.cc, b, sizeof b, (flags::kUnreliable | flags::kDropIfBlocked), 1, p.net.now()),
            SendResult::kInvalidLane);
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kReliable, 0, p.net.now()), SendResult::kOk);
  // Bad configurations change nothing.
  EXPECT_FALSE(c.configure_lanes(p.cc, {}));
  EXPECT_FALSE(c.configure_lanes(p.cc, {LaneConfig{0, 1}, LaneConfig{0, 0}})) << "weight 0";
  EXPECT_FALSE(c.configure_lanes(p.cc, std::vector<LaneConfig>(protocol::kMaxLanes + 1)));
  EXPECT_FALSE(c.configure_lanes(ConnectionId(12345), {LaneConfig{}}));
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kReliable, 1, p.net.now()), SendResult::kInvalidLane);
  EXPECT_EQ(c.send(ConnectionId(12345), b, sizeof b, flags::kReliable, 0, p.net.now()),
            SendResult::kNoConnection);
  // Three lanes: 0..2 valid, 3 not.
  ASSERT_TRUE(c.configure_lanes(p.cc, std::vector<LaneConfig>(3)));
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kReliable, 2, p.net.now()), SendResult::kOk);
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kReliable, 3, p.net.now()), SendResult::kInvalidLane);
  // The most lanes allowed; the last one works end to end and is numbered on its own.
  ASSERT_TRUE(c.configure_lanes(p.cc, std::vector<LaneConfig>(protocol::kMaxLanes)));
  const uint32_t last = protocol::kMaxLanes - 1;
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kReliable, last, p.net.now()), SendResult::kOk);
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kReliable, last, p.net.now()), SendResult::kOk);
  EXPECT_EQ(c.send(p.cc, b, sizeof b, flags::kReliable, last + 1, p.net.now()), SendResult::kInvalidLane);
  std::map<uint32_t, uint64_t> count;
  p.net.run_for(
      seconds(2), [&] { return count[last] == 2 && count[0] == 1 && count[2] == 1; },
      [&] {
        ReceivedMessage m;
        while (s.receive(p.sc, m))
          EXPECT_EQ(m.number, ++count[m.lane]) << "lane " << m.lane;
      });
  EXPECT_EQ(count[last], 2u) << p.where();
  EXPECT_EQ(count[0], 1u);
  EXPECT_EQ(count[2], 1u);
  // The server never configured lanes: it may only send on lane 0, whatever the client uses.
  EXPECT_EQ(s.send(p.sc, b, sizeof b, flags::kReliable, 1, p.net.now()), SendResult::kInvalidLane);
}

}  // namespace
}  // namespace peerlink::sim
