// Hosts over loopback: many mixed messages, graceful close, lanes, a simulated bad network.
#include <random>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

// Sends messages in order, retrying on kLimitExceeded while the receiver drains.
struct Sender {
  Host& host;
  ConnectionHandle conn;
  SendResult send(const std::vector<uint8_t>& m, uint32_t flags, uint32_t lane = 0) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      SendResult r = host.send(conn, m.data(), m.size(), flags, lane);
      if (r != SendResult::kLimitExceeded || std::chrono::steady_clock::now() > deadline) return r;
      std::this_thread::sleep_for(1ms);
    }
  }
};

TEST(HostTransfer, TenThousandMixedMessages_ReliableExactAndInOrder_UnreliableIntact) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());
  std::mt19937_64 rng(20261125);
  std::printf("seed 20261125\n");
  constexpr int kMessages = 10000;
  // Sizes: every 1000th is 4 MiB; the rest log-uniform from 1 byte to 64 KiB. Unreliable ones (1 in 4,
  // never above 64 KiB) go on lane 1, reliable ones on lane 0.
  ASSERT_TRUE(p.client.configure_lanes(p.client_conn, {LaneConfig{}, LaneConfig{}}));
  std::vector<std::pair<size_t, bool>> plan;
  for (int i = 0; i < kMessages; ++i) {
    size_t size =
        i % 1000 == 999 ? (4u << 20) : size_t(std::exp2(std::uniform_real_distribution<>(0, 16)(rng)));
    bool reliable = size > 65536 || rng() % 4 != 0;
    plan.emplace_back(size, reliable);
  }

  std::atomic<bool> send_failed{false};
  std::thread sender([&] {
    Sender s{p.client, p.client_conn};
    for (int i = 0; i < kMessages; ++i) {
      auto [size, reliable] = plan[size_t(i)];
      SendResult r = s.send(make_message(uint64_t(i), size),
                            reliable ? send_flags::kReliable : send_flags::kUnreliable, reliable ? 0 : 1);
      if (r != SendResult::kOk) {
        ADD_FAILURE() << "send " << i << ": " << to_string(r);
        send_failed = true;
        return;
      }
    }
  });

  size_t reliable_expected = 0;
  for (auto& [size, reliable] : plan)
    reliable_expected += reliable ? 1 : 0;
  size_t reliable_seen = 0, unreliable_seen = 0;
  int64_t last_reliable = -1, last_unreliable = -1;
  uint64_t last_unreliable_number = 0;
  std::vector<Message> in;
  bool ok = pump_until(
      {&p.server},
      [&] {
        in.clear();
        p.server.receive(p.server_conn, in, 512);
        for (const Message& m : in) {
          size_t size = m.size();
          if (size >= 12) {
            uint64_t index = message_index(m.data());
            EXPECT_LT(index, uint64_t(kMessages));
            if (index >= uint64_t(kMessages)) return true;
            EXPECT_EQ(plan[index].first, size) << "message " << index;
            EXPECT_TRUE(check_message(index, m.data(), size)) << "message " << index << " corrupted";
            if (m.reliable()) {
              EXPECT_GT(int64_t(index), last_reliable) << "reliable out of order";
              last_reliable = int64_t(index);
            } else {
              EXPECT_GT(int64_t(index), last_unreliable);
              last_unreliable = int64_t(index);
            }
          }
          if (m.reliable()) {
            EXPECT_EQ(m.lane(), 0u);
            EXPECT_EQ(m.number(), reliable_seen + 1);
            ++reliable_seen;
          } else {
            EXPECT_EQ(m.lane(), 1u);
            EXPECT_GT(m.number(), last_unreliable_number);
            last_unreliable_number = m.number();
            ++unreliable_seen;
          }
        }
        return reliable_seen == reliable_expected || send_failed;
      },
      120s);
  sender.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(reliable_seen, reliable_expected);
  // Loopback rarely loses anything; unreliable messages may still be dropped under pressure.
  EXPECT_GT(unreliable_seen, (kMessages - reliable_expected) / 2);
  std::printf("reliable %zu/%zu, unreliable %zu/%zu\n", reliable_seen, reliable_expected, unreliable_seen,
              kMessages - reliable_expected);
}

TEST(HostTransfer, CloseWithLinger_PeerReceivesEverythingThenTheClose) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());
  constexpr int kMessages = 320;  // 20 MiB of 64 KiB messages
  for (int i = 0; i < kMessages; ++i)
    ASSERT_EQ(p.client.send(p.client_conn, make_message(uint64_t(i), 65536).data(), 65536), SendResult::kOk);
  ASSERT_TRUE(p.client.close(p.client_conn, CloseMode::kAfterDelivery, 1001, "done"));

  int received = 0;
  std::vector<Message> in;
  ASSERT_TRUE(pump_until(
      {&p.server},
      [&] {
        in.clear();
        p.server.receive(p.server_conn, in);
        for (const Message& m : in) {
          EXPECT_EQ(message_index(m.data()), uint64_t(received));
          EXPECT_TRUE(check_message(uint64_t(received), m.data(), m.size()));
          ++received;
        }
        return received == kMessages && p.server_events.find(ConnectionEventKind::kClosed, p.server_conn);
      },
      60s));
  auto e = p.server_events.find(ConnectionEventKind::kClosed, p.server_conn);
  EXPECT_EQ(e->info.end_reason, 1001u);
}

TEST(HostTransfer, DestroyAfterLingeringClose_DeliversBeforeReturning) {
  Host server(test_config());
  EventRecorder se(server);
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  ConnectionHandle server_conn = kInvalidConnection;
  int received = 0;
  constexpr int kMessages = 64;
  {
    Host client(test_config());
    EventRecorder ce(client);
    ConnectionHandle c = client.connect(loopback(server, l)).value_or(kInvalidConnection);
    ASSERT_TRUE(
        pump_until({&client, &server}, [&] { return bool(ce.find(ConnectionEventKind::kConnected, c)); }));
    for (int i = 0; i < kMessages; ++i)
      ASSERT_EQ(client.send(c, make_message(uint64_t(i), 65536).data(), 65536), SendResult::kOk);
    client.close(c, CloseMode::kAfterDelivery, 1000, "");
  }  // ~Host waits for the lingering connection
  std::vector<Message> in;
  ASSERT_TRUE(pump_until(
      {&server},
      [&] {
        if (!server_conn) {
          if (auto e = se.find(ConnectionEventKind::kConnected)) server_conn = e->info.handle;
        }
        in.clear();
        if (server_conn) server.receive(server_conn, in);
        for (const Message& m : in)
          EXPECT_TRUE(check_message(uint64_t(received++), m.data(), m.size()));
        return received == kMessages;
      },
      20s));
}

// Large messages (copied with the Host's lock released, once the send buffer has room) from two threads at
// once, against a send buffer that fills: each is accepted or refused whole, and every accepted one arrives
// exact and in its lane's order.
TEST(HostTransfer, LargeMessagesFromTwoThreads_FullSendBuffer_RefusedWholeAcceptedExact) {
  HostConfig client_config = test_config();
  client_config.send_buffer_bytes = 512 * 1024;  // room for seven 64 KiB messages
  client_config.max_message_size = 128 * 1024;
  // The server's flow control stops the sender while its application reads nothing.
  HostConfig server_config = test_config();
  server_config.receive_buffer_bytes = 256 * 1024;
  server_config.max_message_size = 128 * 1024;
  ConnectedPair p(server_config, client_config);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.client.configure_lanes(p.client_conn, {LaneConfig{}, LaneConfig{}}));
  constexpr uint64_t kPerThread = 200;
  constexpr size_t kSize = 64 * 1024;
  std::atomic<uint64_t> refusals{0};
  std::vector<std::thread> senders;
  for (uint32_t lane = 0; lane < 2; ++lane) {
    senders.emplace_back([&, lane] {
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      for (uint64_t i = lane; i < 2 * kPerThread; i += 2) {
        const std::vector<uint8_t> m = make_message(i, kSize + i);
        SendResult r;
        while ((r = p.client.send(p.client_conn, m.data(), m.size(), send_flags::kReliable, lane)) ==
                   SendResult::kLimitExceeded &&
               std::chrono::steady_clock::now() < deadline) {
          ++refusals;
          std::this_thread::sleep_for(100us);
        }
        if (r != SendResult::kOk) {
          ADD_FAILURE() << "send " << i << ": " << to_string(r);
          return;
        }
      }
    });
  }
  // The server reads nothing until the send buffer has refused a message, which its receive window makes
  // certain: the refusal path is tested whatever the scheduling.
  const auto fill_deadline = std::chrono::steady_clock::now() + 30s;
  while (refusals.load() == 0 && std::chrono::steady_clock::now() < fill_deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_GT(refusals.load(), 0u) << "the send buffer never filled";
  uint64_t next[2] = {0, 1};
  uint64_t got = 0;
  std::vector<Message> in;
  const bool all = pump_until(
      {&p.server},
      [&] {
        in.clear();
        p.server.receive(p.server_conn, in);
        for (const Message& m : in) {
          const uint64_t index = message_index(m.data());
          EXPECT_EQ(index, next[m.lane()]) << "lane " << m.lane();
          EXPECT_TRUE(check_message(index, m.data(), m.size())) << "message " << index;
          next[m.lane()] = index + 2;
          ++got;
        }
        return got == 2 * kPerThread;
      },
      60s);
  for (auto& t : senders)
    t.join();
  EXPECT_TRUE(all) << got << " of " << 2 * kPerThread << " messages arrived";
}

TEST(HostTransfer, Lanes_EachLaneInOrderIndependently) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(
      p.client.configure_lanes(p.client_conn, {LaneConfig{0, 1}, LaneConfig{1, 1}, LaneConfig{1, 3}}));
  EXPECT_FALSE(p.client.configure_lanes(p.client_conn, {}));
  EXPECT_EQ(p.client.send(p.client_conn, "x", 1, send_flags::kReliable, 7), SendResult::kInvalidLane);
  for (uint64_t i = 0; i < 300; ++i)
    ASSERT_EQ(p.client.send(p.client_conn, make_message(i, 2000).data(), 2000, send_flags::kReliable,
                            uint32_t(i % 3)),
              SendResult::kOk);
  uint64_t next[3] = {0, 1, 2};
  int got = 0;
  std::vector<Message> in;
  ASSERT_TRUE(pump_until({&p.server}, [&] {
    in.clear();
    p.server.receive(p.server_conn, in);
    for (const Message& m : in) {
      uint64_t index = message_index(m.data());
      EXPECT_EQ(index % 3, m.lane());
      EXPECT_EQ(index, next[m.lane()]);
      next[m.lane()] += 3;
      ++got;
    }
    return got == 300;
  }));
}

TEST(HostTransfer, SimulatedBadNetwork_ReliableDataExactAndRttReflectsLag) {
  HostConfig cfg = test_config();
  cfg.simulation.seed = 7;
  cfg.simulation.send.loss_percent = 5;
  cfg.simulation.send.lag = 15ms;
  cfg.simulation.send.jitter = 2ms;
  cfg.simulation.receive.duplicate_percent = 2;
  cfg.simulation.receive.reorder_percent = 2;
  cfg.log_level = LogLevel::kError;  // the simulation warns at start
  ConnectedPair p(cfg, cfg);
  ASSERT_TRUE(p.connect());
  constexpr int kMessages = 100;  // 500 KB: a few seconds at 5 % loss and 30 ms RTT
  for (int i = 0; i < kMessages; ++i)
    ASSERT_EQ(p.client.send(p.client_conn, make_message(uint64_t(i), 5000).data(), 5000), SendResult::kOk);
  int received = 0;
  std::vector<Message> in;
  ASSERT_TRUE(pump_until(
      {&p.server},
      [&] {
        in.clear();
        p.server.receive(p.server_conn, in);
        for (const Message& m : in)
          EXPECT_TRUE(check_message(uint64_t(received++), m.data(), m.size()));
        return received == kMessages;
      },
      60s));
  auto st = p.client.status(p.client_conn);
  ASSERT_TRUE(st);
  EXPECT_GE(st->rtt_min, 30ms);  // 15 ms each way
  EXPECT_GT(st->packets_lost, 0u);
  EXPECT_GT(p.client.counters().simulated_dropped, 0u);
}

}  // namespace
}  // namespace peerlink::test
