// Hosts over loopback: many connections to one listener, poll groups, several application threads.
#include <atomic>
#include <set>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

TEST(HostScale, FiveHundredConnectionsToOneListener_AllConnectAndEcho) {
  Host server(test_config());
  Host client(test_config());
  EventRecorder se(server);
  EventRecorder ce(client);
  PollGroupHandle group = server.create_poll_group();
  ListenOptions lo;
  lo.poll_group = group;
  ListenSocketHandle l = server.listen(0, lo).value_or(kInvalidListenSocket);
  constexpr int kConnections = 500;
  std::vector<ConnectionHandle> conns;
  for (int i = 0; i < kConnections; ++i) {
    ConnectOptions o;
    o.user_data = uint64_t(i);
    ConnectionHandle c = client.connect(loopback(server, l), o).value_or(kInvalidConnection);
    ASSERT_NE(c, kInvalidConnection);
    conns.push_back(c);
  }
  ASSERT_TRUE(pump_until(
      {&client, &server},
      [&] {
        return ce.count(ConnectionEventKind::kConnected) == size_t(kConnections) &&
               se.count(ConnectionEventKind::kConnected) == size_t(kConnections);
      },
      60s))
      << ce.count(ConnectionEventKind::kConnected) << " client-side, "
      << se.count(ConnectionEventKind::kConnected) << " server-side connected";
  EXPECT_EQ(server.connections().size(), size_t(kConnections));

  // Each client connection says its number; the server echoes from its poll group.
  for (int i = 0; i < kConnections; ++i) {
    std::string text = std::to_string(i);
    ASSERT_EQ(client.send(conns[size_t(i)], text.data(), text.size()), SendResult::kOk);
  }
  std::set<std::string> echoed;
  std::vector<Message> in;
  std::vector<Message> back;
  ASSERT_TRUE(pump_until(
      {&client, &server},
      [&] {
        in.clear();
        server.receive_on_poll_group(group, in);
        for (const Message& m : in)
          EXPECT_EQ(server.send(m.connection(), m.data(), m.size()), SendResult::kOk);
        for (ConnectionHandle c : conns) {
          back.clear();
          client.receive(c, back);
          for (const Message& m : back) {
            EXPECT_EQ(m.text(), std::to_string(m.connection_user_data()));
            echoed.insert(std::string(m.text()));
          }
        }
        return echoed.size() == size_t(kConnections);
      },
      60s));
}

TEST(HostScale, PollGroups_MessagesOnlyFromMembers) {
  Host server(test_config());
  Host client(test_config());
  EventRecorder se(server);
  EventRecorder ce(client);
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  ConnectionHandle a = client.connect(loopback(server, l)).value_or(kInvalidConnection);
  ConnectionHandle b = client.connect(loopback(server, l)).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until({&client, &server}, [&] { return se.count(ConnectionEventKind::kConnected) == 2; }));
  ASSERT_TRUE(pump_until({&client}, [&] { return ce.count(ConnectionEventKind::kConnected) == 2; }));
  std::vector<ConnectionHandle> server_side = server.connections();
  ASSERT_EQ(server_side.size(), 2u);
  PollGroupHandle g = server.create_poll_group();
  ASSERT_TRUE(server.set_poll_group(server_side[0], g));
  EXPECT_FALSE(server.set_poll_group(server_side[0], 4242));

  client.send(a, "a", 1);
  client.send(b, "b", 1);
  std::vector<Message> grouped, rest;
  ASSERT_TRUE(pump_until({&server}, [&] {
    server.receive_on_poll_group(g, grouped);
    server.receive_on_poll_group(kDefaultPollGroup, rest);
    return grouped.size() + rest.size() == 2;
  }));
  ASSERT_EQ(grouped.size(), 1u);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(grouped[0].connection(), server_side[0]);
  EXPECT_EQ(rest[0].connection(), server_side[1]);

  EXPECT_TRUE(server.destroy_poll_group(g));
  EXPECT_FALSE(server.destroy_poll_group(g));
  client.send(a, "a", 1);
  client.send(b, "b", 1);
  rest.clear();
  ASSERT_TRUE(pump_until({&server}, [&] {
    server.receive_on_poll_group(kDefaultPollGroup, rest);
    return rest.size() == 2;
  }));
}

TEST(HostScale, SeveralApplicationThreads_SendReceiveAndQueryAtOnce) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<LaneConfig> lanes(kThreads);
  ASSERT_TRUE(p.client.configure_lanes(p.client_conn, lanes));
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        uint64_t index = uint64_t(t) * kPerThread + uint64_t(i);
        std::vector<uint8_t> m = make_message(index, 16 + size_t(i % 700));
        uint32_t flags = send_flags::kReliable | (i % 3 == 0 ? send_flags::kNoNagle : 0);
        SendResult r;
        while ((r = p.client.send(p.client_conn, m.data(), m.size(), flags, uint32_t(t))) ==
               SendResult::kLimitExceeded)
          std::this_thread::yield();
        EXPECT_EQ(r, SendResult::kOk);
      }
    });
  }
  // A thread that keeps asking for status and info while the others send.
  threads.emplace_back([&] {
    while (!stop) {
      EXPECT_TRUE(p.client.status(p.client_conn));
      EXPECT_TRUE(p.client.connection_info(p.client_conn));
      p.client.counters();
      std::this_thread::sleep_for(200us);
    }
  });
  std::vector<uint64_t> next(kThreads);
  for (int t = 0; t < kThreads; ++t)
    next[size_t(t)] = uint64_t(t) * kPerThread;
  int got = 0;
  std::vector<Message> in;
  bool ok = pump_until(
      {&p.server},
      [&] {
        in.clear();
        p.server.receive(p.server_conn, in);
        for (const Message& m : in) {
          uint64_t index = message_index(m.data());
          EXPECT_EQ(index, next[m.lane()]) << "lane " << m.lane();
          EXPECT_TRUE(check_message(index, m.data(), m.size()));
          next[m.lane()] = index + 1;
          ++got;
        }
        return got == kThreads * kPerThread;
      },
      60s);
  stop = true;
  for (auto& th : threads)
    th.join();
  EXPECT_TRUE(ok) << got << " of " << kThreads * kPerThread;
}

TEST(HostScale, ConcurrentConnectAndClose_NoCrashNoLeak) {
  HostConfig server_config = test_config();
  server_config.connect_timeout = 500ms;  // so that requests abandoned half-way are freed soon
  Host server(server_config);
  server.set_connection_callback([&server](const ConnectionEvent& e) {
    if (e.kind == ConnectionEventKind::kClosed) server.close(e.info.handle);
  });
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  Address to = loopback(server, l);
  Host client(test_config());
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        ConnectionHandle c = client.connect(to).value_or(kInvalidConnection);
        EXPECT_NE(c, kInvalidConnection);
        client.send(c, "x", 1);
        if (i % 2) std::this_thread::sleep_for(1ms);
        EXPECT_TRUE(client.close(c));
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 200; ++i) {
      server.run_callbacks();
      client.run_callbacks();
      std::vector<Message> in;
      server.receive_on_poll_group(kDefaultPollGroup, in);
      std::this_thread::sleep_for(500us);
    }
  });
  for (auto& th : threads)
    th.join();
  EXPECT_TRUE(client.connections().empty());
  // Nothing is left behind on either side once the closes and abandoned handshakes have run their course.
  EXPECT_TRUE(pump_until(
      {&server, &client},
      [&] { return server.counters().connections == 0 && client.counters().connections == 0; }, 20s))
      << server.counters().connections << " server-side, " << client.counters().connections
      << " client-side connections left";
}

}  // namespace
}  // namespace peerlink::test
