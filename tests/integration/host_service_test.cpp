// Host::service(): events and messages from one call, in order, releasing ended connections itself; and
// callbacks per connection and per listener, beside the Host's.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <string>
#include <vector>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

// A UDP socket on loopback that never answers.
class SilentPeer {
 public:
  SilentPeer() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
  }
  ~SilentPeer() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Collects everything service() returns until pred() holds (or 10 s pass).
struct Serviced {
  std::vector<HostEvent> events;
  bool until(Host& host, std::initializer_list<Host*> others, const std::function<bool()>& pred,
             std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    HostEvent e;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      for (Host* h : others)
        h->run_callbacks();
      if (host.service(e, 5ms)) events.push_back(std::move(e));
    }
    return true;
  }
  size_t count(HostEventKind kind) const {
    size_t n = 0;
    for (const auto& e : events)
      n += e.kind == kind ? 1 : 0;
    return n;
  }
};

TEST(HostService, EchoServer_EventsAndMessagesFromOneCallInOrder) {
  Host server(test_config()), client(test_config());
  EventRecorder client_events(client);
  ListenSocketHandle l = server.listen(Address::loopback_v4(0)).value();
  ConnectionHandle c = client.connect(loopback(server, l)).value();
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(client.send(c, "ping", 4), SendResult::kOk);

  // The server: nothing but service(), echoing every message.
  std::vector<HostEvent> got;
  std::vector<Message> echoed;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  HostEvent e;
  while (echoed.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    if (server.service(e, 5ms)) {
      if (e.kind == HostEventKind::kMessage) {
        EXPECT_EQ(server.send(e.message.connection(), e.message.data(), e.message.size()), SendResult::kOk);
      }
      got.push_back(std::move(e));
    }
    client.run_callbacks();
    client.receive(c, echoed);
  }
  ASSERT_EQ(echoed.size(), 3u);
  Serviced s;
  s.events = std::move(got);
  ASSERT_GE(s.events.size(), 4u);
  EXPECT_EQ(s.events[0].kind, HostEventKind::kConnected);  // its event before its first message
  const ConnectionHandle on_server = s.events[0].connection;
  EXPECT_EQ(s.events[0].info.handle, on_server);
  EXPECT_TRUE(s.events[0].info.remote_key_proven);
  EXPECT_EQ(s.events[0].info.remote_key, client.identity().public_key());
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(s.events[i].kind, HostEventKind::kMessage);
    EXPECT_EQ(s.events[i].connection, on_server);
    EXPECT_EQ(s.events[i].message.text(), "ping");
  }
  for (const Message& m : echoed)
    EXPECT_EQ(m.text(), "ping");
}

// The client closes right after sending: the server gets every message first, then kClosed, and the
// connection is released without a close() of the application.
TEST(HostService, PeerCloses_MessagesThenClosedThenReleased) {
  Host server(test_config()), client(test_config());
  EventRecorder client_events(client);
  ListenSocketHandle l = server.listen(Address::loopback_v4(0)).value();
  ConnectionHandle c = client.connect(loopback(server, l)).value();
  ASSERT_TRUE(pump_until({&client},
                         [&] { return client_events.find(ConnectionEventKind::kConnected, c).has_value(); }));
  const int kCount = 50;
  for (int i = 0; i < kCount; ++i) {
    auto m = make_message(uint64_t(i), 1000);
    ASSERT_EQ(client.send(c, m.data(), m.size()), SendResult::kOk);
  }
  ASSERT_TRUE(client.close(c, CloseMode::kAfterDelivery, 1042, "all said"));

  Serviced s;
  ASSERT_TRUE(s.until(server, {&client}, [&] { return s.count(HostEventKind::kClosed) == 1; }));
  ASSERT_EQ(s.count(HostEventKind::kMessage), size_t(kCount));
  uint64_t next = 0;
  for (const HostEvent& e : s.events)
    if (e.kind == HostEventKind::kMessage) {
      EXPECT_TRUE(check_message(next, e.message.data(), e.message.size()));
      ++next;
    }
  const HostEvent& closed = s.events.back();
  ASSERT_EQ(closed.kind, HostEventKind::kClosed);
  EXPECT_EQ(closed.info.end_reason, 1042u);
  EXPECT_EQ(closed.info.end_debug, "all said");
  // Released by service(): the handle is gone, nothing to close.
  EXPECT_FALSE(server.connection_info(closed.connection));
  EXPECT_FALSE(server.close(closed.connection));
  EXPECT_TRUE(server.connections().empty());
  HostEvent none;
  EXPECT_FALSE(server.service(none, 0ms));
}

// A connection's own callback (from ConnectOptions or ListenOptions) gets its events; the Host's callback
// and service() get the rest; run_callbacks() and service() both deliver to callbacks.
TEST(HostService, CallbacksPerConnectionAndListener_OthersGoToTheHostOrToService) {
  std::vector<ConnectionEvent> listener_events, own_events, host_events;  // before the Hosts using them
  Host server(test_config()), client(test_config());
  ListenOptions with_callback;
  with_callback.callback = [&](const ConnectionEvent& e) { listener_events.push_back(e); };
  ListenSocketHandle l1 = server.listen(Address::loopback_v4(0), with_callback).value();
  ListenSocketHandle l2 = server.listen(Address::loopback_v4(0)).value();
  ConnectOptions own;
  own.callback = [&](const ConnectionEvent& e) { own_events.push_back(e); };
  ConnectionHandle c1 = client.connect(loopback(server, l1), own).value();
  ConnectionHandle c2 = client.connect(loopback(server, l2)).value();
  client.set_connection_callback([&](const ConnectionEvent& e) { host_events.push_back(e); });

  // The server has no Host callback: l2's connection comes out of service(), l1's goes to its callback.
  Serviced s;
  ASSERT_TRUE(s.until(server, {&client}, [&] {
    return listener_events.size() == 1 && s.count(HostEventKind::kConnected) == 1 && own_events.size() == 1 &&
           host_events.size() == 1;
  }));
  EXPECT_EQ(listener_events[0].kind, ConnectionEventKind::kConnected);
  EXPECT_EQ(listener_events[0].info.listen_socket, l1);
  EXPECT_EQ(s.events[0].info.listen_socket, l2);
  EXPECT_NE(s.events[0].connection, listener_events[0].info.handle);
  EXPECT_EQ(own_events[0].info.handle, c1);
  EXPECT_EQ(host_events[0].info.handle, c2);
}

TEST(HostService, FromInsideACallback_ReturnsNothing) {
  bool inner = true, called = false;
  Host server(test_config()), client(test_config());
  ListenSocketHandle l = server.listen(Address::loopback_v4(0)).value();
  ConnectOptions o;
  o.callback = [&](const ConnectionEvent&) {
    HostEvent e;
    inner = client.service(e, 0ms);
    called = true;
  };
  ASSERT_TRUE(client.connect(loopback(server, l), o));
  ASSERT_TRUE(pump_until({&client, &server}, [&] { return called; }));
  EXPECT_FALSE(inner);
}

// Before the first acknowledgement there is no round-trip sample: no made-up value. (A peer that never
// answers keeps the connection there.)
TEST(HostService, Status_NoRttBeforeTheFirstSample) {
  SilentPeer silent;
  Host client(test_config());
  ConnectionHandle c = client.connect(Address::loopback_v4(silent.port())).value();
  std::this_thread::sleep_for(50ms);  // the Initiation went out (and was retransmitted): still no sample
  auto st = client.status(c);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, ConnectionState::kConnecting);
  EXPECT_FALSE(st->rtt) << "rtt " << st->rtt->count() << " us before any sample";
  EXPECT_EQ(st->rtt_min.count(), 0);

  // A real peer: a sample soon after connecting.
  Host server(test_config());
  EventRecorder events(client);
  ListenSocketHandle l = server.listen(Address::loopback_v4(0)).value();
  ConnectionHandle live = client.connect(loopback(server, l)).value();
  ASSERT_TRUE(pump_until({&client, &server},
                         [&] { return events.find(ConnectionEventKind::kConnected, live).has_value(); }));
  ASSERT_EQ(client.send(live, "x", 1, send_flags::kNoNagle), SendResult::kOk);
  ASSERT_TRUE(pump_until({&client, &server}, [&] {
    auto now = client.status(live);
    return now && now->rtt.has_value();
  }));
  EXPECT_LT(client.status(live)->rtt->count(), 1000000);
}

// With callbacks on the service thread, service() still returns the events that have no callback, and a
// kService callback that calls service() or wait() gets false at once instead of stalling the Host.
TEST(HostService, ServiceThreadCallbacks_ServiceReturnsTheRestAndNeverBlocksTheServiceThread) {
  HostConfig cfg = test_config();
  cfg.callback_thread = CallbackThread::kService;
  // Before the Hosts: their callbacks use these until the Hosts are gone.
  std::atomic<int> own_events{0};
  std::atomic<bool> inner_service{true}, inner_wait{true};
  std::atomic<int64_t> inner_us{0};
  Host server(cfg), client(test_config());
  ListenOptions with_callback;
  with_callback.callback = [&](const ConnectionEvent&) {
    const auto t0 = std::chrono::steady_clock::now();
    HostEvent e;
    inner_service = server.service(e, 2s);
    inner_wait = server.wait(2s);
    inner_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    ++own_events;
  };
  ListenSocketHandle l1 = server.listen(Address::loopback_v4(0), with_callback).value();
  ListenSocketHandle l2 = server.listen(Address::loopback_v4(0)).value();
  ASSERT_TRUE(client.connect(loopback(server, l1)));
  ASSERT_TRUE(client.connect(loopback(server, l2)));
  Serviced s;
  ASSERT_TRUE(
      s.until(server, {&client}, [&] { return own_events >= 1 && s.count(HostEventKind::kConnected) == 1; }));
  EXPECT_EQ(s.events[0].info.listen_socket, l2);
  EXPECT_FALSE(inner_service);
  EXPECT_FALSE(inner_wait);
  EXPECT_LT(inner_us.load(), 1000000) << "the service thread waited inside a callback";
}

}  // namespace
}  // namespace peerlink::test
