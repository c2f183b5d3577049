// Hosts over loopback: connecting, accepting and refusing, identities and end reasons, events.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <stdexcept>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

TEST(HostConnect, ConnectAndExchange_BothSidesSeeConnectedAndMessagesFlow) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());

  auto ci = p.client.connection_info(p.client_conn);
  auto si = p.server.connection_info(p.server_conn);
  ASSERT_TRUE(ci && si);
  EXPECT_EQ(ci->state, ConnectionState::kConnected);
  EXPECT_EQ(ci->remote_key, p.server.identity().public_key());
  EXPECT_EQ(ci->remote_fingerprint, p.server.identity().fingerprint());
  EXPECT_EQ(si->remote_key, p.client.identity().public_key());
  EXPECT_TRUE(si->incoming);
  EXPECT_FALSE(ci->incoming);
  EXPECT_EQ(si->listen_socket, p.listener);
  EXPECT_EQ(ci->route, RouteType::kDirectUdp);
  EXPECT_FALSE(ci->relayed);
  EXPECT_EQ(ci->remote_address.port(), p.server.listen_address(p.listener)->port());
  EXPECT_EQ(si->remote_address.port(), ci->local_address.port());

  ASSERT_EQ(p.client.send(p.client_conn, "hello", 5), SendResult::kOk);
  std::vector<Message> in;
  ASSERT_TRUE(pump_until(
      {&p.server}, [&] { return p.server.receive_on_poll_group(kDefaultPollGroup, in) > 0 || !in.empty(); }));
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].text(), "hello");
  EXPECT_EQ(in[0].connection(), p.server_conn);
  EXPECT_TRUE(in[0].reliable());
  EXPECT_EQ(in[0].number(), 1u);

  ASSERT_EQ(p.server.send(p.server_conn, "world", 5, send_flags::kReliable | send_flags::kNoNagle),
            SendResult::kOk);
  std::vector<Message> back;
  ASSERT_TRUE(pump_until({&p.client}, [&] { return p.client.receive(p.client_conn, back) > 0; }));
  EXPECT_EQ(back[0].text(), "world");

  auto st = p.client.status(p.client_conn);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, ConnectionState::kConnected);
  ASSERT_TRUE(st->rtt);  // measured by now
  EXPECT_GT(st->rtt->count(), 0);
  EXPECT_GT(st->rtt_min.count(), 0);
  EXPECT_GE(st->messages_sent, 1u);
  EXPECT_GE(st->messages_received, 1u);
}

TEST(HostConnect, WrongExpectedKey_ClosedWithKeyMismatch) {
  Host server(test_config());
  Host client(test_config());
  EventRecorder events(client);
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  ASSERT_NE(l, kInvalidListenSocket);
  ConnectOptions o;
  o.expected_key = Identity::generate().public_key();  // not the server's
  ConnectionHandle c = client.connect(loopback(server, l), o).value_or(kInvalidConnection);
  ASSERT_NE(c, kInvalidConnection);
  ASSERT_TRUE(pump_until(
      {&client, &server}, [&] { return bool(events.find(ConnectionEventKind::kClosed, c)); }, 5s));
  auto e = events.find(ConnectionEventKind::kClosed, c);
  EXPECT_EQ(e->info.end_reason, uint32_t(EndReason::kRemoteKeyMismatch)) << e->info.end_debug;
  EXPECT_FALSE(events.find(ConnectionEventKind::kConnected, c));
  EXPECT_TRUE(server.connections().empty());
  // The handle stays until released.
  EXPECT_EQ(client.connection_info(c)->state, ConnectionState::kClosed);
  EXPECT_EQ(client.send(c, "x", 1), SendResult::kInvalidState);
  EXPECT_TRUE(client.close(c));
  EXPECT_FALSE(client.connection_info(c));
  EXPECT_EQ(client.send(c, "x", 1), SendResult::kNoConnection);
}

TEST(HostConnect, NoListener_ConnectTimesOutWithClearReason) {
  // A bound UDP socket that never answers: the handshake gets no reply.
  int silent = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);

  HostConfig cfg = test_config();
  cfg.connect_timeout = 600ms;
  Host client(cfg);
  EventRecorder events(client);
  ConnectionHandle c = client.connect(Address::loopback_v4(ntohs(a.sin_port))).value_or(kInvalidConnection);
  ASSERT_NE(c, kInvalidConnection);
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(pump_until(
      {&client}, [&] { return bool(events.find(ConnectionEventKind::kClosed, c)); }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(events.find(ConnectionEventKind::kClosed, c)->info.end_reason,
            uint32_t(EndReason::kMiscConnectTimeout));
  close(silent);
}

TEST(HostConnect, PeerWithoutListenSocket_RefusesQuickly) {
  // A Host's connect() socket is not a listen socket: a request to it is refused, not left to time out.
  Host a(test_config());
  Host b(test_config());
  EventRecorder ea(a);
  EventRecorder eb(b);
  ListenSocketHandle l = b.listen(0).value_or(kInvalidListenSocket);
  ConnectionHandle ab = a.connect(loopback(b, l)).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until({&a, &b}, [&] { return bool(ea.find(ConnectionEventKind::kConnected, ab)); }));
  // a's socket for connect() does not accept connections.
  Address a_client = a.connection_info(ab)->local_address;
  HostConfig cfg = test_config();
  cfg.connect_timeout = 5s;
  Host c(cfg);
  EventRecorder ec(c);
  ConnectionHandle cc = c.connect(Address::loopback_v4(a_client.port())).value_or(kInvalidConnection);
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(pump_until(
      {&c, &a}, [&] { return bool(ec.find(ConnectionEventKind::kClosed, cc)); }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(ec.find(ConnectionEventKind::kClosed, cc)->info.end_reason, uint32_t(EndReason::kRemoteRejected));
  EXPECT_EQ(a.connections().size(), 1u);  // only ab
}

TEST(HostConnect, ManualAccept_IncomingRequestEventThenAcceptOrReject) {
  Host server(test_config());
  Host client(test_config());
  EventRecorder se(server);
  EventRecorder ce(client);
  ListenOptions lo;
  lo.auto_accept = false;
  ListenSocketHandle l = server.listen(0, lo).value_or(kInvalidListenSocket);
  ConnectionHandle c1 = client.connect(loopback(server, l)).value_or(kInvalidConnection);
  ASSERT_TRUE(
      pump_until({&client, &server}, [&] { return se.count(ConnectionEventKind::kIncomingRequest) == 1; }));
  auto req = se.find(ConnectionEventKind::kIncomingRequest);
  EXPECT_EQ(req->info.remote_key, client.identity().public_key());
  EXPECT_EQ(req->info.state, ConnectionState::kConnecting);
  EXPECT_TRUE(server.accept(req->info.handle));
  EXPECT_FALSE(server.accept(req->info.handle));  // only once
  ASSERT_TRUE(
      pump_until({&client, &server}, [&] { return bool(ce.find(ConnectionEventKind::kConnected, c1)); }));

  ConnectionHandle c2 = client.connect(loopback(server, l)).value_or(kInvalidConnection);
  ASSERT_TRUE(
      pump_until({&client, &server}, [&] { return se.count(ConnectionEventKind::kIncomingRequest) == 2; }));
  ConnectionHandle r2 = se.events().back().info.handle;
  EXPECT_TRUE(server.reject(r2));
  EXPECT_FALSE(server.connection_info(r2));  // released at once
  ASSERT_TRUE(pump_until(
      {&client, &server}, [&] { return bool(ce.find(ConnectionEventKind::kClosed, c2)); }, 5s));
  EXPECT_EQ(ce.find(ConnectionEventKind::kClosed, c2)->info.end_reason, uint32_t(EndReason::kRemoteRejected));
}

TEST(HostConnect, UnansweredRequest_FailsAfterConnectTimeout) {
  HostConfig cfg = test_config();
  cfg.connect_timeout = 500ms;
  Host server(cfg);
  Host client(cfg);
  EventRecorder se(server);
  EventRecorder ce(client);
  ListenOptions lo;
  lo.auto_accept = false;
  ListenSocketHandle l = server.listen(0, lo).value_or(kInvalidListenSocket);
  ConnectionHandle c = client.connect(loopback(server, l)).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until(
      {&client, &server}, [&] { return bool(ce.find(ConnectionEventKind::kClosed, c)); }, 5s));
  EXPECT_FALSE(ce.find(ConnectionEventKind::kConnected, c));
  ASSERT_TRUE(pump_until(
      {&server}, [&] { return bool(se.find(ConnectionEventKind::kClosed)); }, 5s));
}

TEST(HostConnect, CloseListenSocket_NewRequestsRefusedExistingGoOn) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());
  Address where = loopback(p.server, p.listener);
  EXPECT_TRUE(p.server.close_listen_socket(p.listener));
  EXPECT_FALSE(p.server.close_listen_socket(p.listener));
  EXPECT_FALSE(p.server.listen_address(p.listener));
  ConnectionHandle c2 = p.client.connect(where).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until(
      {&p.client, &p.server}, [&] { return bool(p.client_events.find(ConnectionEventKind::kClosed, c2)); },
      5s));
  EXPECT_EQ(p.client_events.find(ConnectionEventKind::kClosed, c2)->info.end_reason,
            uint32_t(EndReason::kRemoteRejected));
  ASSERT_EQ(p.client.send(p.client_conn, "still", 5), SendResult::kOk);
  std::vector<Message> in;
  ASSERT_TRUE(pump_until({&p.server}, [&] { return p.server.receive(p.server_conn, in) > 0; }));
  EXPECT_EQ(in[0].text(), "still");
}

TEST(HostConnect, PeerClosesWithReason_OtherSideGetsClosedEventWithThatReason) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());
  EXPECT_TRUE(p.client.close(p.client_conn, CloseMode::kNow, 1234, "bye now"));
  EXPECT_FALSE(p.client.close(p.client_conn));
  ASSERT_TRUE(pump_until(
      {&p.server}, [&] { return bool(p.server_events.find(ConnectionEventKind::kClosed, p.server_conn)); }));
  auto e = p.server_events.find(ConnectionEventKind::kClosed, p.server_conn);
  EXPECT_EQ(e->info.end_reason, 1234u);
  EXPECT_EQ(e->info.end_debug, "bye now");
  // The application closed its side itself: no event there.
  EXPECT_FALSE(p.client_events.find(ConnectionEventKind::kClosed, p.client_conn));
}

TEST(HostConnect, DestroyingHost_PeerLearnsAtOnce) {
  auto server = std::make_unique<Host>(test_config());
  Host client(test_config());
  EventRecorder ce(client);
  ListenSocketHandle l = server->listen(0).value_or(kInvalidListenSocket);
  ConnectionHandle c = client.connect(loopback(*server, l)).value_or(kInvalidConnection);
  ASSERT_TRUE(
      pump_until({&client, server.get()}, [&] { return bool(ce.find(ConnectionEventKind::kConnected, c)); }));
  server.reset();
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(pump_until(
      {&client}, [&] { return bool(ce.find(ConnectionEventKind::kClosed, c)); }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(ce.find(ConnectionEventKind::kClosed, c)->info.end_reason, uint32_t(EndReason::kLocalShutdown));
}

TEST(HostConnect, Ipv6Loopback_ConnectsWhenAvailable) {
  Host server(test_config());
  Host client(test_config());
  EventRecorder ce(client);
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  int probe = socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool have_v6 = probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (probe >= 0) close(probe);
  if (!have_v6) GTEST_SKIP() << "::1 is not available on this machine";
  auto to = Address::parse("[::1]:" + std::to_string(server.listen_address(l)->port()));
  ASSERT_TRUE(to);
  ConnectionHandle c = client.connect(*to).value_or(kInvalidConnection);
  ASSERT_TRUE(
      pump_until({&client, &server}, [&] { return bool(ce.find(ConnectionEventKind::kConnected, c)); }));
  EXPECT_TRUE(client.connection_info(c)->remote_address.is_ipv6());
}

TEST(HostConnect, BadArguments_ClearErrorsWithCodesNoConnection) {
  Host h(test_config());
  Result<ConnectionHandle> c = h.connect(Address());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(c.error().message.find("port"), std::string::npos) << c.error().message;
  c = h.connect(Address::loopback_v4(0));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
  ConnectOptions o;
  o.poll_group = 99;
  c = h.connect(Address::loopback_v4(9), o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
  EXPECT_NE(c.error().message.find("poll group"), std::string::npos) << c.error().message;
  EXPECT_EQ(h.send(12345, "x", 1), SendResult::kNoConnection);
  EXPECT_FALSE(h.close(12345));
  EXPECT_FALSE(h.accept(12345));
  EXPECT_FALSE(h.connection_info(12345));
  std::vector<Message> out;
  EXPECT_EQ(h.receive(12345, out), 0u);

  // A port in use is a clear listen error, with its own code.
  ListenSocketHandle l = h.listen(Address::loopback_v4(0)).value_or(kInvalidListenSocket);
  ASSERT_NE(l, kInvalidListenSocket);
  Host other(test_config());
  Result<ListenSocketHandle> taken = other.listen(*h.listen_address(l));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, ErrorCode::kAddressInUse) << taken.error().message;
  EXPECT_NE(taken.error().message.find("in use"), std::string::npos) << taken.error().message;
  // An address that is not this machine's.
  taken = other.listen(*Address::parse("192.0.2.1:0"));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, ErrorCode::kInvalidArgument) << taken.error().message;
}

TEST(HostConnect, Flags_ReliableUnlessUnreliableAndInvalidCombinationsRefused) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());
  // kNoNagle alone is a reliable message sent at once (it was the unreliable trap of the old flags).
  ASSERT_EQ(p.client.send(p.client_conn, "a", 1, send_flags::kNoNagle), SendResult::kOk);
  ASSERT_EQ(p.client.send(p.client_conn, "b", 1, send_flags::kUnreliable | send_flags::kNoNagle),
            SendResult::kOk);
  // Dropping a message that cannot leave at once is only for unreliable ones; unknown bits are refused.
  EXPECT_EQ(p.client.send(p.client_conn, "c", 1, send_flags::kDropIfBlocked), SendResult::kInvalidFlags);
  EXPECT_EQ(p.client.send(p.client_conn, "c", 1, 1u << 7), SendResult::kInvalidFlags);
  std::vector<Message> got;
  auto find = [&](std::string_view text) -> const Message* {
    for (const Message& m : got)
      if (m.text() == text) return &m;
    return nullptr;
  };
  ASSERT_TRUE(pump_until({&p.client, &p.server}, [&] {
    p.server.receive(p.server_conn, got);
    return find("a") && find("b");
  }));
  EXPECT_TRUE(find("a")->reliable());
  EXPECT_FALSE(find("b")->reliable());
}

// The default asks for no cookie when the Host is not under load (one round trip less); kAlways does.
TEST(HostConnect, AddressValidation_DefaultSkipsTheCookie_AlwaysAsksForIt) {
  {
    ConnectedPair p;
    ASSERT_EQ(p.server.counters().retries_sent, 0u);
    ASSERT_TRUE(p.connect());
    EXPECT_EQ(p.server.counters().retries_sent, 0u);
    EXPECT_EQ(p.server.counters().unproven_initiations, 1u);
  }
  HostConfig validating = test_config();
  validating.address_validation = AddressValidation::kAlways;
  ConnectedPair p(validating);
  ASSERT_TRUE(p.connect());
  EXPECT_EQ(p.server.counters().retries_sent, 1u);
  EXPECT_EQ(p.server.counters().unproven_initiations, 0u);
}

TEST(HostConnect, GarbageConfig_RefusedWithClearMessage) {
  auto expect_invalid = [](HostConfig c, const std::string& word) {
    try {
      Host h(c);
      ADD_FAILURE() << "accepted a bad config (" << word << ")";
    } catch (const Exception& e) {
      EXPECT_EQ(e.error().code, ErrorCode::kInvalidConfig);
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
    Result<std::unique_ptr<Host>> r = Host::create(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidConfig);
  };
  HostConfig c = test_config();
  c.connect_timeout = std::chrono::milliseconds(-5);
  expect_invalid(c, "connect_timeout");
  c = test_config();
  c.congestion_control = static_cast<CongestionControl>(7);
  expect_invalid(c, "congestion_control");
  c = test_config();
  c.address_validation = static_cast<AddressValidation>(9);
  expect_invalid(c, "address_validation");
  c = test_config();
  c.simulation.send.loss_percent = std::nan("");
  expect_invalid(c, "loss_percent");
  c = test_config();
  c.simulation.receive.duplicate_percent = 250;
  expect_invalid(c, "duplicate_percent");
  c = test_config();
  c.max_message_size = c.send_buffer_bytes + 1;
  expect_invalid(c, "max_message_size");
  c = test_config();
  c.max_connections = 0;
  expect_invalid(c, "max_connections");
  c = test_config();
  c.wait_spin = std::chrono::milliseconds(11);
  expect_invalid(c, "wait_spin");
  c = test_config();
  c.ice.check_pacing = std::chrono::milliseconds(1);
  expect_invalid(c, "check_pacing");
  EXPECT_TRUE(test_config().validate());
}

TEST(HostConnect, ServiceThreadCallbacks_DeliveredWithoutRunCallbacks) {
  HostConfig cfg = test_config();
  cfg.callback_thread = CallbackThread::kService;
  Host server(cfg);
  Host client(cfg);
  std::atomic<int> connected{0};
  std::atomic<bool> reentered{false};
  client.set_connection_callback([&](const ConnectionEvent& e) {
    if (e.kind != ConnectionEventKind::kConnected) return;
    // Callbacks run with no library lock held: calling back into the Host is fine.
    reentered = client.send(e.info.handle, "hi", 2) == SendResult::kOk;
    ++connected;
  });
  server.set_connection_callback([&](const ConnectionEvent& e) {
    if (e.kind == ConnectionEventKind::kConnected) ++connected;
  });
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  client.connect(loopback(server, l)).value_or(kInvalidConnection);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (connected < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(connected.load(), 2);
  EXPECT_TRUE(reentered.load());
  EXPECT_EQ(client.run_callbacks(), 0u);  // nothing is queued for the application thread
}

TEST(HostConnect, MessageCallback_ServiceThreadEchoesWithoutReceive) {
  HostConfig cfg = test_config();
  Host app_thread_host(test_config());
  EXPECT_FALSE(app_thread_host.set_message_callback([](Message&&) {}));  // needs CallbackThread::kService

  cfg.callback_thread = CallbackThread::kService;
  Host server(cfg);
  ASSERT_TRUE(server.set_message_callback([&server](Message&& m) {
    EXPECT_EQ(server.send(m.connection(), m.data(), m.size(), send_flags::kReliable | send_flags::kNoNagle),
              SendResult::kOk);
  }));
  Host client(test_config());
  EventRecorder ce(client);
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  ConnectionHandle c = client.connect(loopback(server, l)).value_or(kInvalidConnection);
  for (uint64_t i = 0; i < 100; ++i)
    ASSERT_EQ(client.send(c, make_message(i, 100).data(), 100), SendResult::kOk);
  uint64_t next = 0;
  std::vector<Message> in;
  ASSERT_TRUE(pump_until({&client}, [&] {
    in.clear();
    client.receive(c, in);
    for (const Message& m : in) {
      EXPECT_EQ(message_index(m.data()), next);
      EXPECT_TRUE(check_message(next, m.data(), m.size()));
      ++next;
    }
    return next == 100;
  }));
  // Nothing was left queued for receive() on the server.
  std::vector<Message> left;
  EXPECT_EQ(server.receive_on_poll_group(kDefaultPollGroup, left), 0u);
}

}  // namespace
}  // namespace peerlink::test
