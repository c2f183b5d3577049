// Key updates: with a small packet budget the keys roll many times during a transfer, from either side or
// both at once, through loss, reordering and duplication, without losing or corrupting a byte.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::ReceivedMessage;
using protocol::SendResult;
namespace flags = protocol::send_flags;

PairOptions rolling_keys(uint64_t packets, double loss, double reorder, double duplicate) {
  PairOptions o;
  for (EndpointConfig* e : {&o.client, &o.server})
    e->connection.key_update_packets = packets;
  both_ways(o, [&](LinkConfig& l) {
    l.delay = milliseconds(10);
    l.loss = loss;
    l.reorder = reorder;
    l.reorder_delay = milliseconds(6);
    l.duplicate = duplicate;
    l.bandwidth_bps = 500'000'000;
    l.queue_bytes = 1'000'000;
  });
  return o;
}

TEST(KeyUpdate, Budget500PacketsTwentyMegabytesThroughLossAndReordering_ExactAndManyUpdatesOnBothSides) {
  SimPair p(test_seed(701), rolling_keys(500, 0.02, 0.05, 0.02));
  ASSERT_TRUE(p.connect()) << p.where();
  TransferResult r = bulk_transfer(p, 20'000'000, 30'000, seconds(900));
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash) << p.where();
  auto cs = p.net.endpoint(p.client).stats(p.cc, p.net.now());
  auto ss = p.net.endpoint(p.server).stats(p.sc, p.net.now());
  std::printf("[ sim ] seed %llu: key updates client %llu server %llu in %.1f s simulated\n",
              (unsigned long long)p.net.seed(), (unsigned long long)cs->key_updates,
              (unsigned long long)ss->key_updates, std::chrono::duration<double>(r.elapsed).count());
  EXPECT_GT(cs->key_updates, 10u) << p.where();
  EXPECT_GT(ss->key_updates, 10u) << p.where();
  // Reordered packets of the previous phase still open: nothing fails authentication.
  EXPECT_EQ(cs->packets_rejected_auth + ss->packets_rejected_auth, 0u) << p.where();
  EXPECT_EQ(p.client_state, ConnectionState::kConnected);
}

TEST(KeyUpdate, BothSidesSendingAndUpdatingAtOnce_BothTransfersExact) {
  SimPair p(test_seed(702), rolling_keys(300, 0.02, 0.05, 0.02));
  ASSERT_TRUE(p.connect()) << p.where();
  struct Direction {
    protocol::Endpoint* from;
    ConnectionId from_conn;
    protocol::Endpoint* to;
    ConnectionId to_conn;
    uint64_t sent = 0, received = 0;
  };
  Direction dirs[2] = {{&p.net.endpoint(p.client), p.cc, &p.net.endpoint(p.server), p.sc},
                       {&p.net.endpoint(p.server), p.sc, &p.net.endpoint(p.client), p.cc}};
  const uint64_t kMessages = 400;  // 8 MB each way
  const size_t kSize = 20'000;
  bool failed = false;
  p.net.run_for(
      seconds(600),
      [&] { return failed || (dirs[0].received == kMessages && dirs[1].received == kMessages); },
      [&] {
        for (int d = 0; d < 2; ++d) {
          Direction& dir = dirs[d];
          while (dir.sent < kMessages &&
                 dir.from->stats(dir.from_conn, p.net.now())->queued_bytes < (1u << 20)) {
            std::vector<uint8_t> m = make_message(uint64_t(d) << 32 | (dir.sent + 1), kSize);
            ASSERT_EQ(dir.from->send(dir.from_conn, m.data(), m.size(), flags::kReliable, 0, p.net.now()),
                      SendResult::kOk);
            ++dir.sent;
          }
          ReceivedMessage m;
          while (!failed && dir.to->receive(dir.to_conn, m)) {
            ++dir.received;
            if (m.number != dir.received || !check_message(uint64_t(d) << 32 | dir.received, m.data, kSize)) {
              ADD_FAILURE() << "direction " << d << " message " << dir.received << "; " << p.where();
              failed = true;
            }
          }
        }
      });
  EXPECT_EQ(dirs[0].received, kMessages) << p.where();
  EXPECT_EQ(dirs[1].received, kMessages) << p.where();
  auto cs = p.net.endpoint(p.client).stats(p.cc, p.net.now());
  auto ss = p.net.endpoint(p.server).stats(p.sc, p.net.now());
  EXPECT_GT(cs->key_updates, 10u);
  EXPECT_GT(ss->key_updates, 10u);
  EXPECT_EQ(cs->packets_rejected_auth + ss->packets_rejected_auth, 0u) << p.where();
}

TEST(KeyUpdate, HeavyReorderingAcrossUpdates_OldPhasePacketsStillOpen) {
  // Half the packets are held back 15 ms (longer than the 10 ms one-way delay): many arrive after the next
  // phase has begun.
  PairOptions o = rolling_keys(200, 0.0, 0.5, 0.0);
  both_ways(o, [](LinkConfig& l) { l.reorder_delay = milliseconds(15); });
  SimPair p(test_seed(703), o);
  ASSERT_TRUE(p.connect()) << p.where();
  TransferResult r = bulk_transfer(p, 5'000'000, 10'000, seconds(600));
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  auto cs = p.net.endpoint(p.client).stats(p.cc, p.net.now());
  auto ss = p.net.endpoint(p.server).stats(p.sc, p.net.now());
  EXPECT_GT(cs->key_updates, 5u) << p.where();
  EXPECT_EQ(ss->packets_rejected_auth, 0u) << p.where();
  EXPECT_EQ(cs->packets_rejected_auth, 0u) << p.where();
}

TEST(KeyUpdate, ShortIntervalOnAQuietConnection_KeysRollByTimeAndMessagesStillFlow) {
  PairOptions o;
  for (EndpointConfig* e : {&o.client, &o.server})
    e->connection.key_update_interval = seconds(1);
  SimPair p(test_seed(704), o);
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  uint64_t sent = 0, received = 0;
  Instant next_send = p.net.now();
  // One small message every 200 ms for 12 s: a few packets per key phase.
  while (p.net.now() < next_send + seconds(1) && sent < 60) {
    p.net.run_until(next_send, {}, [&] {
      ReceivedMessage m;
      while (s.receive(p.sc, m)) {
        ++received;
        ASSERT_TRUE(check_message(received, m.data, 100)) << p.where();
      }
    });
    std::vector<uint8_t> m = make_message(++sent, 100);
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable | flags::kNoNagle, 0, p.net.now()),
              SendResult::kOk);
    next_send = p.net.now() + milliseconds(200);
  }
  p.net.run_for(seconds(1), {}, [&] {
    ReceivedMessage m;
    while (s.receive(p.sc, m))
      ++received;
  });
  EXPECT_EQ(received, sent);
  auto cs = c.stats(p.cc, p.net.now());
  EXPECT_GE(cs->key_updates, 8u) << "about one per second; " << p.where();
  EXPECT_EQ(s.stats(p.sc, p.net.now())->packets_rejected_auth, 0u);
}

}  // namespace
}  // namespace peerlink::sim
