// How an application thread waits: HostConfig::receive_on_wait (wait() reads the sockets itself) and
// HostConfig::wait_spin (wait() spins before it sleeps). Whatever the mode, nothing is lost, reordered or
// left unprocessed, also when the application stops waiting.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

HostConfig mode_config(bool receive_on_wait, std::chrono::microseconds spin) {
  HostConfig c = test_config();
  c.receive_on_wait = receive_on_wait;
  c.wait_spin = spin;
  return c;
}

// A server whose application thread echoes every message (wait() + receive() + send()) until stopped.
class EchoServer {
 public:
  explicit EchoServer(const HostConfig& config) : host_(config) {
    host_.set_connection_callback([](const ConnectionEvent&) {});
    listen_ = host_.listen(0).value_or(kInvalidListenSocket);
    thread_ = std::thread([this] {
      std::vector<Message> in;
      while (!stop_) {
        host_.wait(20ms);
        host_.run_callbacks();
        while (host_.receive_on_poll_group(kDefaultPollGroup, in) > 0) {
          for (const Message& m : in)
            host_.send(m.connection(), m.data(), m.size(), send_flags::kReliable | send_flags::kNoNagle);
          in.clear();
        }
      }
    });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  Address address() const { return loopback(host_, listen_); }

 private:
  Host host_;
  ListenSocketHandle listen_ = kInvalidListenSocket;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Sends `count` numbered messages on c one at a time, each awaited with wait() + receive(c) before the next;
// returns how many round trips brought the right reply within 5 s (stops at the first that did not). Safe
// to run on several threads at once, one connection each.
uint64_t ping_pongs(Host& client, ConnectionHandle c, uint64_t first, uint64_t count) {
  std::vector<Message> in;
  for (uint64_t i = first; i < first + count; ++i) {
    const auto m = make_message(i, 32);
    if (client.send(c, m.data(), m.size(), send_flags::kReliable | send_flags::kNoNagle) != SendResult::kOk)
      return i - first;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (in.empty() && std::chrono::steady_clock::now() < deadline) {
      client.wait(50ms);
      client.receive(c, in);
    }
    if (in.size() != 1 || !check_message(i, in[0].data(), in[0].size())) return i - first;
    in.clear();
  }
  return count;
}

// Ping-pong through wait() + receive() on both sides, then 8 MB each way, checked exact and in order.
void ping_pong_and_bulk(bool receive_on_wait, std::chrono::microseconds spin) {
  EchoServer server(mode_config(receive_on_wait, spin));
  Host client(mode_config(receive_on_wait, spin));
  EventRecorder events(client);
  const ConnectionHandle c = *client.connect(server.address());
  ASSERT_TRUE(
      pump_until({&client}, [&] { return events.find(ConnectionEventKind::kConnected, c).has_value(); }));

  ASSERT_EQ(ping_pongs(client, c, 0, 500), 500u);

  // Bulk: the echo sends it all back; messages 64 KiB, numbered on.
  constexpr uint64_t kFirst = 1000, kCount = 128;
  for (uint64_t i = kFirst; i < kFirst + kCount; ++i) {
    const auto m = make_message(i, 64 << 10);
    ASSERT_EQ(client.send(c, m.data(), m.size()), SendResult::kOk);
  }
  std::vector<Message> in;
  uint64_t next = kFirst;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (next < kFirst + kCount && std::chrono::steady_clock::now() < deadline) {
    client.wait(100ms);
    client.receive(c, in);
    for (const Message& m : in) {
      ASSERT_TRUE(check_message(next, m.data(), m.size())) << "message " << next;
      ++next;
    }
    in.clear();
  }
  EXPECT_EQ(next, kFirst + kCount);
}

TEST(WaitModes, ReceiveOnWait_IsTheDefault) {
  EXPECT_TRUE(HostConfig{}.receive_on_wait);
}

TEST(WaitModes, ReceiveOnWait_PingPongAndBulkExact) {
  ping_pong_and_bulk(true, {});
}

TEST(WaitModes, ServiceThreadReceives_PingPongAndBulkExact) {
  ping_pong_and_bulk(false, {});
}

TEST(WaitModes, WaitSpin_PingPongAndBulkExact) {
  ping_pong_and_bulk(false, std::chrono::microseconds(50));
}

// Both at once: wait() polls the sockets without blocking while it spins, then sleeps polling them. This
// checks that nothing is lost or reordered on that path; it cannot tell whether the spin polled.
TEST(WaitModes, WaitSpinThenReceiveOnWait_PingPongAndBulkExact) {
  ping_pong_and_bulk(true, std::chrono::microseconds(50));
}

// A Host whose service thread runs the callbacks is valid with receive_on_wait on (the default), which has
// no effect there: wait() on an application thread sleeps until the service thread has received.
TEST(WaitModes, ReceiveOnWait_AcceptedWithServiceCallbacks) {
  HostConfig config = test_config();
  config.callback_thread = CallbackThread::kService;
  ASSERT_TRUE(config.receive_on_wait);
  ASSERT_TRUE(config.validate());
  EchoServer server(test_config());
  Host client(config);
  std::atomic<bool> connected{false};
  client.set_connection_callback([&](const ConnectionEvent& e) {
    if (e.kind == ConnectionEventKind::kConnected) connected = true;
  });
  const ConnectionHandle c = *client.connect(server.address());
  const auto t0 = std::chrono::steady_clock::now();
  while (!connected && std::chrono::steady_clock::now() - t0 < 10s)
    client.wait(100ms);
  ASSERT_TRUE(connected);
  EXPECT_EQ(ping_pongs(client, c, 0, 50), 50u);
}

// Two application threads wait on one Host at once, each for the replies on its own connection: one of them
// reads the sockets, the other sleeps until woken; neither loses or misses a reply.
TEST(WaitModes, ReceiveOnWait_TwoWaitingThreads_EachGetsItsReplies) {
  EchoServer server(test_config());
  Host client(mode_config(true, {}));
  EventRecorder events(client);
  const ConnectionHandle c1 = *client.connect(server.address());
  const ConnectionHandle c2 = *client.connect(server.address());
  ASSERT_TRUE(pump_until({&client}, [&] {
    return events.find(ConnectionEventKind::kConnected, c1).has_value() &&
           events.find(ConnectionEventKind::kConnected, c2).has_value();
  }));
  constexpr uint64_t kTrips = 300;
  uint64_t second_done = 0;
  std::thread second([&] { second_done = ping_pongs(client, c2, 100000, kTrips); });
  const uint64_t first_done = ping_pongs(client, c1, 0, kTrips);
  second.join();
  EXPECT_EQ(first_done, kTrips);
  EXPECT_EQ(second_done, kTrips);
}

TEST(WaitModes, ReceiveOnWait_ApplicationStopsWaiting_ServiceThreadReceivesAgain) {
  EchoServer server(test_config());
  Host client(mode_config(true, {}));
  EventRecorder events(client);
  const ConnectionHandle c = *client.connect(server.address());
  ASSERT_TRUE(
      pump_until({&client}, [&] { return events.find(ConnectionEventKind::kConnected, c).has_value(); }));
  client.wait(1ms);  // this thread polled the socket once, then left

  // From now on nobody calls wait(): the echoes must still be read, acknowledged and queued.
  constexpr uint64_t kCount = 200;
  for (uint64_t i = 0; i < kCount; ++i) {
    const auto m = make_message(i, 1000);
    ASSERT_EQ(client.send(c, m.data(), m.size()), SendResult::kOk);
  }
  std::vector<Message> in;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (in.size() < kCount && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
    client.receive(c, in);
  }
  ASSERT_EQ(in.size(), kCount);
  for (uint64_t i = 0; i < kCount; ++i)
    EXPECT_TRUE(check_message(i, in[i].data(), in[i].size()));
  // Everything sent is acknowledged: the acknowledgements were read too, by the service thread.
  const auto acked_by = std::chrono::steady_clock::now() + 5s;
  while (client.status(c)->queued_bytes != 0 && std::chrono::steady_clock::now() < acked_by)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(client.status(c)->queued_bytes, 0u);
}

TEST(WaitModes, ReceiveOnWait_EventsWakeTheWaiter) {
  Host server(test_config());
  Host client(mode_config(true, {}));
  EventRecorder events(client);
  const ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  const ConnectionHandle c = *client.connect(loopback(server, l));
  // wait() returns for kConnected (an event run_callbacks() delivers), well before its timeout.
  const auto t0 = std::chrono::steady_clock::now();
  while (!events.find(ConnectionEventKind::kConnected, c) && std::chrono::steady_clock::now() - t0 < 10s) {
    client.wait(5s);
    client.run_callbacks();
  }
  EXPECT_TRUE(events.find(ConnectionEventKind::kConnected, c));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
}

}  // namespace
}  // namespace peerlink::test
