// Hosts over loopback: what happens to connections, events and waiting threads around the edges: half-open
// handshakes, events of released handles, re-entrant callbacks, event order, wake-ups of wait().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

// A bound UDP socket on 127.0.0.1 that never answers.
struct SilentPort {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  uint16_t port = 0;
  SilentPort() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~SilentPort() { close(fd); }
};

TEST(HostLifecycle, HalfOpenHandshakes_FreedAfterConnectTimeout) {
  // Requests whose initiator goes away before the handshake completes never reach the application; the
  // Host must still free them, or anyone could fill max_connections.
  HostConfig server_config = test_config();
  server_config.connect_timeout = 300ms;
  // State from the first packet: the easiest case to abuse.
  server_config.address_validation = AddressValidation::kNever;
  server_config.max_connections = 20;
  Host server(server_config);
  // A client slow to close may finish its handshake first (a loaded machine): that connection reaches the
  // application, which releases it when it ends. Only the half-open ones are the Host's to free.
  server.set_connection_callback([&](const ConnectionEvent& e) {
    if (e.kind == ConnectionEventKind::kClosed) server.close(e.info.handle);
  });
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  Host client(test_config());
  for (int i = 0; i < 30; ++i) {
    ConnectionHandle c =
        client.connect(loopback(server, l)).value_or(kInvalidConnection);  // no key: XX, three messages
    ASSERT_NE(c, kInvalidConnection);
    EXPECT_TRUE(client.close(c));  // gone after the first message
  }
  // First every request must have reached the server (or the check below could pass before they do).
  ASSERT_TRUE(pump_until(
      {&server, &client}, [&] { return server.counters().datagrams_received >= 30; }, 5s));
  ASSERT_TRUE(pump_until(
      {&server, &client}, [&] { return server.counters().connections == 0; }, 5s))
      << server.counters().connections << " connections left at the server";
  // And a real client still gets in.
  EventRecorder ce(client);
  ConnectionHandle c = client.connect(loopback(server, l)).value_or(kInvalidConnection);
  ASSERT_TRUE(
      pump_until({&server, &client}, [&] { return bool(ce.find(ConnectionEventKind::kConnected, c)); }));
}

TEST(HostLifecycle, Wait_WakesForEachEventWithoutMessages) {
  SilentPort a, b;
  HostConfig cfg = test_config();
  cfg.connect_timeout = 600ms;
  Host host(cfg);
  EventRecorder events(host);
  auto start = std::chrono::steady_clock::now();
  host.connect(Address::loopback_v4(a.port)).value_or(kInvalidConnection);
  std::this_thread::sleep_for(40ms);
  host.connect(Address::loopback_v4(b.port)).value_or(kInvalidConnection);
  // Both requests time out about 600 ms after they started; each timeout must wake wait() at once.
  while (events.count(ConnectionEventKind::kClosed) < 2 && std::chrono::steady_clock::now() - start < 10s) {
    host.wait(3s);
    host.run_callbacks();
  }
  EXPECT_EQ(events.count(ConnectionEventKind::kClosed), 2u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(HostLifecycle, ReleasedHandle_QueuedEventsNotDelivered) {
  Host server(test_config());
  Host client(test_config());
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  ConnectionHandle c = client.connect(loopback(server, l)).value_or(kInvalidConnection);
  // Wait for the kConnected event to be queued, without delivering it.
  std::vector<ConnectionEvent> seen;
  client.set_connection_callback([&](const ConnectionEvent& e) { seen.push_back(e); });
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (client.connection_info(c)->state != ConnectionState::kConnected &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(client.connection_info(c)->state, ConnectionState::kConnected);
  std::this_thread::sleep_for(20ms);  // the service thread queues the event right after the state changes
  EXPECT_TRUE(client.close(c));
  client.run_callbacks();
  for (const ConnectionEvent& e : seen)
    EXPECT_NE(e.info.handle, c) << "event " << to_string(e.kind) << " delivered for a released handle";
}

TEST(HostLifecycle, RunCallbacksInsideCallback_ReturnsZeroNoDeadlock) {
  ConnectedPair p;
  std::atomic<int> inner_calls{0};
  size_t inner_result = 99;
  p.client.set_connection_callback([&](const ConnectionEvent&) {
    inner_result = p.client.run_callbacks();
    ++inner_calls;
  });
  ListenSocketHandle l = p.server.listen(0).value_or(kInvalidListenSocket);
  ConnectionHandle c = p.client.connect(loopback(p.server, l)).value_or(kInvalidConnection);
  ASSERT_NE(c, kInvalidConnection);
  ASSERT_TRUE(pump_until({&p.client, &p.server}, [&] { return inner_calls > 0; }));
  EXPECT_EQ(inner_result, 0u);
}

TEST(HostLifecycle, ServiceThreadCallbacks_ConnectedBeforeFirstMessage) {
  HostConfig cfg = test_config();
  cfg.callback_thread = CallbackThread::kService;
  Host server(cfg);
  std::mutex mutex;
  std::vector<std::string> order;
  server.set_connection_callback([&](const ConnectionEvent& e) {
    std::lock_guard<std::mutex> lock(mutex);
    if (e.kind == ConnectionEventKind::kConnected) order.push_back("connected");
  });
  ASSERT_TRUE(server.set_message_callback([&](Message&&) {
    std::lock_guard<std::mutex> lock(mutex);
    order.push_back("message");
  }));
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  for (int i = 0; i < 5; ++i) {
    Host client(test_config());
    ConnectOptions o;
    o.expected_key = server.identity().public_key();  // IK: the packet that confirms also carries the data
    ConnectionHandle c = client.connect(loopback(server, l), o).value_or(kInvalidConnection);
    client.send(c, "first", 5, send_flags::kReliable | send_flags::kNoNagle);
    ASSERT_TRUE(pump_until({&client}, [&] {
      std::lock_guard<std::mutex> lock(mutex);
      return order.size() == size_t(2 * (i + 1));
    }));
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(order[size_t(2 * i)], "connected");
    EXPECT_EQ(order[size_t(2 * i + 1)], "message");
  }
}

TEST(HostLifecycle, NotListeningSocket_RefusesBeforeAnyHandshakeWork) {
  Host a(test_config());
  Host b(test_config());
  EventRecorder ea(a);
  ListenSocketHandle l = b.listen(0).value_or(kInvalidListenSocket);
  ConnectionHandle ab = a.connect(loopback(b, l)).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until({&a, &b}, [&] { return bool(ea.find(ConnectionEventKind::kConnected, ab)); }));
  uint16_t a_port = a.connection_info(ab)->local_address.port();
  HostCounters before = a.counters();
  Host c(test_config());
  EventRecorder ec(c);
  ConnectionHandle cc = c.connect(Address::loopback_v4(a_port)).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until(
      {&c, &a}, [&] { return bool(ec.find(ConnectionEventKind::kClosed, cc)); }, 5s));
  EXPECT_EQ(ec.find(ConnectionEventKind::kClosed, cc)->info.end_reason, uint32_t(EndReason::kRemoteRejected));
  HostCounters after = a.counters();
  EXPECT_EQ(after.retries_sent, before.retries_sent);  // refused statelessly, not challenged
  EXPECT_GT(after.rejects_sent, before.rejects_sent);
  EXPECT_EQ(after.connections, before.connections);
}

TEST(HostLifecycle, DurationsBeyondADay_Refused) {
  HostConfig c = test_config();
  c.idle_timeout = std::chrono::milliseconds::max();
  ASSERT_FALSE(c.validate());
  EXPECT_NE(c.validate().error().message.find("idle_timeout"), std::string::npos);
  c = test_config();
  c.linger_timeout = std::chrono::hours(25);
  ASSERT_FALSE(c.validate());
  EXPECT_NE(c.validate().error().message.find("linger_timeout"), std::string::npos);
  EXPECT_THROW(Host h(c), Exception);
}

}  // namespace
}  // namespace peerlink::test
