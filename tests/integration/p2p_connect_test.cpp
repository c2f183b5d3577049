// Peer-to-peer connections between Hosts in one process: in-process signaling, real libnice ICE over the
// loopback interface, the encrypted handshake over the ICE stream.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

TEST(P2PConnect, ConnectThroughSignaling_BothConnectedAndMessagesFlow) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ASSERT_NE(b.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  Result<ConnectionHandle> connecting = a.connect(SignalingHub::id("b"));
  ASSERT_TRUE(connecting) << connecting.error().message;
  const ConnectionHandle c = *connecting;
  ASSERT_EQ(a.send(c, "early", 5), SendResult::kOk);  // queued until connected
  ASSERT_TRUE(pump_until({&a, &b},
                         [&] {
                           return ea.find(ConnectionEventKind::kConnected, c) &&
                                  eb.find(ConnectionEventKind::kConnected);
                         }))
      << "a: " << ea.events().size() << " events, b: " << eb.events().size();
  ConnectionHandle s = eb.find(ConnectionEventKind::kConnected)->info.handle;
  auto info = *a.connection_info(c);
  EXPECT_EQ(info.remote_peer, SignalingHub::id("b"));
  EXPECT_EQ(info.remote_key, b.identity().public_key());
  EXPECT_EQ(info.route, RouteType::kHost);
  EXPECT_FALSE(info.relayed);
  auto binfo = *b.connection_info(s);
  EXPECT_EQ(binfo.remote_peer, SignalingHub::id("a"));
  EXPECT_EQ(binfo.remote_key, a.identity().public_key());
  EXPECT_TRUE(binfo.incoming);

  auto got = receive_n(b, s, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(got[0].data()), got[0].size()), "early");

  // 2 MB reliable each way, exact.
  const size_t kCount = 32, kSize = 64 << 10;
  for (uint64_t i = 0; i < kCount; ++i) {
    auto m = make_message(i, kSize);
    ASSERT_EQ(a.send(c, m.data(), m.size()), SendResult::kOk);
    ASSERT_EQ(b.send(s, m.data(), m.size()), SendResult::kOk);
  }
  auto at_b = receive_n(b, s, kCount);
  auto at_a = receive_n(a, c, kCount);
  ASSERT_EQ(at_b.size(), kCount);
  ASSERT_EQ(at_a.size(), kCount);
  for (uint64_t i = 0; i < kCount; ++i) {
    EXPECT_TRUE(check_message(i, at_b[i].data(), at_b[i].size()));
    EXPECT_TRUE(check_message(i, at_a[i].data(), at_a[i].size()));
  }
  EXPECT_GT(a.counters().signaling_sent, 0u);
  EXPECT_LE(hub->blobs_to("b"), 4u);
  EXPECT_LE(hub->blobs_to("a"), 4u);
}

TEST(P2PConnect, LanesConfiguredBeforeThePathIsFound_MessagesOnThemWaitAndArrive) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ASSERT_NE(b.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  Result<ConnectionHandle> connecting = a.connect(SignalingHub::id("b"));
  ASSERT_TRUE(connecting) << connecting.error().message;
  const ConnectionHandle c = *connecting;
  // Before any path: lane 1 does not exist yet, then it does; invalid lanes are refused as always.
  EXPECT_EQ(a.send(c, "x", 1, send_flags::kReliable, 1), SendResult::kInvalidLane);
  EXPECT_FALSE(a.configure_lanes(c, {}));
  EXPECT_FALSE(a.configure_lanes(c, {LaneConfig{0, 1}, LaneConfig{1, 0}}));
  ASSERT_TRUE(a.configure_lanes(c, {LaneConfig{0, 1}, LaneConfig{1, 1}}));
  ASSERT_EQ(a.send(c, "bulk", 4, send_flags::kReliable, 1), SendResult::kOk);
  ASSERT_EQ(a.send(c, "chat", 4, send_flags::kReliable, 0), SendResult::kOk);
  EXPECT_EQ(a.send(c, "x", 1, send_flags::kReliable, 2), SendResult::kInvalidLane);
  ASSERT_TRUE(pump_until({&a, &b}, [&] { return eb.find(ConnectionEventKind::kConnected).has_value(); }));
  const ConnectionHandle s = eb.find(ConnectionEventKind::kConnected)->info.handle;
  auto got = receive_n(b, s, 2);
  ASSERT_EQ(got.size(), 2u);
  std::map<uint32_t, std::string> by_lane;
  for (const Message& m : got)
    by_lane[m.lane()] = std::string(reinterpret_cast<const char*>(m.data()), m.size());
  EXPECT_EQ(by_lane[0], "chat");
  EXPECT_EQ(by_lane[1], "bulk");
  EXPECT_EQ(a.status(c)->lane_queued_bytes.size(), 2u);
}

TEST(P2PConnect, UnknownScheme_ClearError) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a"));
  Result<ConnectionHandle> c = a.connect(*PeerId::parse("xmpp:bob@example.org"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNoSignaling);
  EXPECT_NE(c.error().message.find("no signaling plugin for scheme 'xmpp'"), std::string::npos)
      << c.error().message;
  EXPECT_NE(c.error().message.find("mem"), std::string::npos) << c.error().message;
  Host plain(test_config());
  c = plain.connect(SignalingHub::id("a"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNoSignaling);
  Result<ListenSocketHandle> l = plain.listen_p2p();
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, ErrorCode::kNoSignaling);
  EXPECT_NE(l.error().message.find("no signaling plugin"), std::string::npos) << l.error().message;
}

TEST(P2PConnect, PeerNotListening_RejectedQuickly) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a);
  auto start = std::chrono::steady_clock::now();
  ConnectionHandle c = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  auto e = wait_closed({&a, &b}, ea, c);
  ASSERT_TRUE(e);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(e->info.end_reason, uint32_t(EndReason::kRemoteRejected));
  EXPECT_NE(e->info.end_debug.find("not accepting"), std::string::npos) << e->info.end_debug;
  EXPECT_TRUE(a.close(c));
}

TEST(P2PConnect, ClosedListener_RefusesNewRequestsAndCanListenAgain) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a);
  ListenSocketHandle l = b.listen_p2p().value_or(kInvalidListenSocket);
  ASSERT_NE(l, kInvalidListenSocket);
  Result<ListenSocketHandle> again = b.listen_p2p();  // one per virtual port
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_TRUE(b.close_listen_socket(l));
  EXPECT_FALSE(b.close_listen_socket(l));
  ConnectionHandle c = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  auto closed = wait_closed({&a, &b}, ea, c);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kRemoteRejected));
  ASSERT_NE(b.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  ConnectionHandle c2 = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  EXPECT_TRUE(pump_until({&a, &b}, [&] { return ea.find(ConnectionEventKind::kConnected, c2).has_value(); }));
}

TEST(P2PConnect, RejectedWithReason) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a);
  ListenOptions lo;
  lo.auto_accept = false;
  ASSERT_NE(b.listen_p2p(lo).value_or(kInvalidListenSocket), kInvalidListenSocket);
  std::optional<ConnectionEvent> request;
  b.set_connection_callback([&](const ConnectionEvent& e) {
    if (e.kind == ConnectionEventKind::kIncomingRequest) {
      request = e;
      EXPECT_TRUE(b.reject(e.info.handle, "go away"));
    }
  });
  ConnectionHandle c = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  auto e = wait_closed({&a, &b}, ea, c);
  ASSERT_TRUE(e);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->info.remote_peer, SignalingHub::id("a"));
  EXPECT_EQ(e->info.end_reason, uint32_t(EndReason::kRemoteRejected));
  EXPECT_NE(e->info.end_debug.find("go away"), std::string::npos) << e->info.end_debug;
}

TEST(P2PConnect, AcceptedByTheApplication_Connects) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a);
  ListenOptions lo;
  lo.auto_accept = false;
  ASSERT_NE(b.listen_p2p(lo).value_or(kInvalidListenSocket), kInvalidListenSocket);
  ConnectionHandle accepted = kInvalidConnection;
  b.set_connection_callback([&](const ConnectionEvent& e) {
    if (e.kind == ConnectionEventKind::kIncomingRequest) {
      accepted = e.info.handle;
      EXPECT_TRUE(b.accept(e.info.handle));
    }
  });
  ConnectionHandle c = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until({&a, &b}, [&] { return ea.find(ConnectionEventKind::kConnected, c).has_value(); }));
  EXPECT_NE(accepted, kInvalidConnection);
  ASSERT_EQ(a.send(c, "hi", 2), SendResult::kOk);
  EXPECT_EQ(receive_n(b, accepted, 1).size(), 1u);
}

TEST(P2PConnect, UnknownPeer_EndsAtOnceWithSignalingUnreachable) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a"));
  EventRecorder ea(a);
  auto start = std::chrono::steady_clock::now();
  ConnectionHandle c = a.connect(SignalingHub::id("nobody")).value_or(kInvalidConnection);
  ASSERT_NE(c, kInvalidConnection);
  auto e = wait_closed({&a}, ea, c);
  ASSERT_TRUE(e);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(e->info.end_reason, uint32_t(EndReason::kMiscSignalingUnreachable));
  EXPECT_NE(e->info.end_debug.find("no such peer"), std::string::npos);
}

TEST(P2PConnect, SignalingLost_ConnectTimesOut) {
  auto hub = std::make_shared<SignalingHub>();
  HostConfig ca = p2p_config(hub, "a");
  ca.connect_timeout = 1500ms;
  Host a(std::move(ca)), b(p2p_config(hub, "b"));
  ASSERT_TRUE(b.listen_p2p());
  hub->set_dropping("b", true);
  EventRecorder ea(a);
  ConnectionHandle c = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  auto e = wait_closed({&a, &b}, ea, c, 5s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->info.end_reason, uint32_t(EndReason::kMiscConnectTimeout));
}

// A peer's plugin on the hub that stops delivering to its Host once the Host has sent `sends` blobs: the
// other side's Close (or anything else it says) after that is never heard.
class GoesDeaf final : public SignalingPlugin, public SignalingSink {
 public:
  GoesDeaf(std::shared_ptr<SignalingHub> hub, const std::string& name, int sends)
      : inner_(hub->plugin(name)), sends_left_(sends) {}
  std::string scheme() const override { return inner_->scheme(); }
  PeerId local_peer() const override { return inner_->local_peer(); }
  void start(SignalingSink& sink) override {
    sink_ = &sink;
    inner_->start(*this);
  }
  void send(const PeerId& to, const void* blob, size_t size) override {
    --sends_left_;
    inner_->send(to, blob, size);
  }
  void stop() override { inner_->stop(); }
  void deliver(const PeerId& from, const void* blob, size_t size, const PeerId& exact) override {
    if (sends_left_ > 0) sink_->deliver(from, blob, size, exact);
  }
  void peer_unreachable(const PeerId& peer, const std::string& detail) override {
    sink_->peer_unreachable(peer, detail);
  }
  void offer_ice_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn) override {
    sink_->offer_ice_servers(stun, turn);
  }
  const PublicKey& local_key() const override { return sink_->local_key(); }
  void network_changed(const std::string& detail) override { sink_->network_changed(detail); }

 private:
  std::shared_ptr<SignalingPlugin> inner_;
  SignalingSink* sink_ = nullptr;
  std::atomic<int> sends_left_;
};

// The offerer pins a key the answerer does not hold: it finds out once ICE found a path, and says so
// through the signaling, so the answerer does not wait for a handshake that will not come.
// a connects to b pinning a key b does not hold; b, listening, accepts the request. Returns b's handle once
// a's connection ended with kRemoteKeyMismatch (kInvalidConnection, with a failure, otherwise).
ConnectionHandle pin_another_key(Host& a, Host& b, EventRecorder& ea, EventRecorder& eb) {
  ListenOptions lo;
  lo.auto_accept = false;
  EXPECT_TRUE(b.listen_p2p(lo));
  ConnectOptions o;
  o.expected_key = Identity::generate().public_key();
  const ConnectionHandle c = a.connect(SignalingHub::id("b"), o).value_or(kInvalidConnection);
  if (!pump_until({&a, &b}, [&] { return eb.find(ConnectionEventKind::kIncomingRequest).has_value(); })) {
    ADD_FAILURE() << "no request at b";
    return kInvalidConnection;
  }
  const ConnectionHandle s = eb.find(ConnectionEventKind::kIncomingRequest)->info.handle;
  EXPECT_TRUE(b.accept(s));
  auto at_a = wait_closed({&a, &b}, ea, c, 10s);
  if (!at_a) {
    ADD_FAILURE() << "a's connection did not end";
    return kInvalidConnection;
  }
  EXPECT_EQ(at_a->info.end_reason, uint32_t(EndReason::kRemoteKeyMismatch));
  return s;
}

TEST(P2PConnect, OffererPinsAnotherKey_BothSidesEndPromptly) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b", 60s));
  EventRecorder ea(a), eb(b);
  const ConnectionHandle s = pin_another_key(a, b, ea, eb);
  ASSERT_NE(s, kInvalidConnection);
  auto at_b = wait_closed({&a, &b}, eb, s, 10s);  // not its 60 s connect timeout
  ASSERT_TRUE(at_b);
  EXPECT_EQ(at_b->info.end_reason, uint32_t(EndReason::kRemoteRejected));  // what a peer's Close says
  EXPECT_NE(at_b->info.end_debug.find("key"), std::string::npos) << at_b->info.end_debug;
}

// The same, but the answerer hears nothing after its answer (the offerer went away, or is hostile): ICE
// finds a path and the handshake never comes. The answerer gives up after its connect timeout; it waited
// for good, holding the handle and the ICE stream's sockets.
TEST(P2PConnect, HandshakeNeverComesAfterIce_AnswererEndsAtItsConnectTimeout) {
  auto hub = std::make_shared<SignalingHub>();
  HostConfig cb = p2p_config(hub, "b", 1500ms);
  cb.signaling.clear();
  cb.signaling.push_back(std::make_shared<GoesDeaf>(hub, "b", 1));
  Host a(p2p_config(hub, "a")), b(std::move(cb));
  EventRecorder ea(a), eb(b);
  const ConnectionHandle s = pin_another_key(a, b, ea, eb);  // b's answer is the one blob it sends
  ASSERT_NE(s, kInvalidConnection);
  auto at_b = wait_closed({&a, &b}, eb, s, 10s);
  ASSERT_TRUE(at_b);
  EXPECT_EQ(at_b->info.end_reason, uint32_t(EndReason::kMiscConnectTimeout));
  EXPECT_NE(at_b->info.end_debug.find("handshake"), std::string::npos) << at_b->info.end_debug;
}

TEST(P2PConnect, SymmetricSimultaneousConnect_ExactlyOneConnection) {
  for (int round = 0; round < 10; ++round) {
    auto hub = std::make_shared<SignalingHub>();
    Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
    EventRecorder ea(a), eb(b);
    ASSERT_NE(a.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
    ASSERT_NE(b.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
    ConnectOptions sym;
    sym.symmetric = true;
    ConnectionHandle ca = kInvalidConnection, cb = kInvalidConnection;
    std::thread t([&] { cb = b.connect(SignalingHub::id("a"), sym).value_or(kInvalidConnection); });
    ca = a.connect(SignalingHub::id("b"), sym).value_or(kInvalidConnection);
    t.join();
    ASSERT_TRUE(pump_until({&a, &b},
                           [&] {
                             return ea.find(ConnectionEventKind::kConnected, ca) &&
                                    eb.find(ConnectionEventKind::kConnected, cb);
                           }))
        << "round " << round;
    // Give a second connection time to appear, if the race went wrong.
    pump_until(
        {&a, &b}, [] { return false; }, 300ms);
    EXPECT_EQ(a.connections().size(), 1u);
    EXPECT_EQ(b.connections().size(), 1u);
    EXPECT_EQ(ea.count(ConnectionEventKind::kConnected), 1u);
    EXPECT_EQ(eb.count(ConnectionEventKind::kConnected), 1u);
    EXPECT_EQ(ea.count(ConnectionEventKind::kClosed), 0u);
    // Connecting again returns the same connection.
    EXPECT_EQ(a.connect(SignalingHub::id("b"), sym).value_or(kInvalidConnection), ca);
    ASSERT_EQ(a.send(ca, "x", 1), SendResult::kOk);
    EXPECT_EQ(receive_n(b, cb, 1).size(), 1u);
  }
}

// The peer closes its side of a symmetric connection and connects again while this side still holds the
// ended handle: the new request is a new connection (whichever way its tie-breaker falls against the old
// one's), not a late copy of the old race.
TEST(P2PConnect, SymmetricReconnectWhileTheEndedHandleIsHeld_Connects) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ASSERT_NE(a.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  ASSERT_NE(b.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  ConnectOptions sym;
  sym.symmetric = true;
  ConnectionHandle ca = a.connect(SignalingHub::id("b"), sym).value_or(kInvalidConnection);
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ASSERT_TRUE(pump_until({&a, &b}, [&] {
      return ea.find(ConnectionEventKind::kConnected, ca) &&
             eb.count(ConnectionEventKind::kConnected) > size_t(round);
    }));
    ConnectionHandle cb = eb.events().back().info.handle;
    ASSERT_EQ(eb.events().back().kind, ConnectionEventKind::kConnected);
    ASSERT_TRUE(b.close(cb, CloseMode::kNow, 0, "again"));
    ASSERT_TRUE(pump_until({&a, &b}, [&] { return ea.find(ConnectionEventKind::kClosed, ca).has_value(); }));
    // a keeps ca (ended) while b connects again.
    ConnectionHandle again = b.connect(SignalingHub::id("a"), sym).value_or(kInvalidConnection);
    ASSERT_NE(again, kInvalidConnection);
    ASSERT_TRUE(pump_until({&a, &b}, [&] {
      return ea.count(ConnectionEventKind::kConnected) == size_t(round) + 2;
    })) << "the new request was dropped";
    ConnectionHandle old = ca;
    for (const auto& e : ea.events())
      if (e.kind == ConnectionEventKind::kConnected) ca = e.info.handle;  // the newest
    EXPECT_NE(ca, old);
    EXPECT_TRUE(a.close(old));
    // Back to the starting shape: b's live handle is `again`; close it next round from b's side.
    ASSERT_TRUE(
        pump_until({&a, &b}, [&] { return eb.find(ConnectionEventKind::kConnected, again).has_value(); }));
  }
}

// A plugin whose start() throws makes the Host's constructor throw, after stopping the plugins it started.
TEST(P2PConnect, PluginStartThrows_HostConstructorThrowsAndEarlierPluginsAreStopped) {
  struct Recording : SignalingPlugin {
    std::string scheme_;
    bool throws = false;
    int starts = 0, stops = 0;
    std::string scheme() const override { return scheme_; }
    void start(SignalingSink&) override {
      ++starts;
      if (throws) throw std::runtime_error("cannot start " + scheme_);
    }
    void send(const PeerId&, const void*, size_t) override {}
    void stop() override { ++stops; }
  };
  auto good = std::make_shared<Recording>(), bad = std::make_shared<Recording>();
  good->scheme_ = "good";
  bad->scheme_ = "bad";
  bad->throws = true;
  HostConfig c = test_config();
  c.signaling = {good, bad};
  try {
    Host h(c);
    ADD_FAILURE() << "the Host was made";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "cannot start bad");
  }
  EXPECT_EQ(good->starts, 1);
  EXPECT_EQ(good->stops, 1);
  EXPECT_EQ(bad->starts, 1);
  EXPECT_EQ(bad->stops, 0);
}

// Hostile or broken plugins: empty, oversized and garbage blobs are counted as invalid without disturbing
// the Host; a flood faster than the service thread reads is bounded and counted, never queued without end.
TEST(P2PConnect, GarbageAndFloodFromAPlugin_CountedAndHarmless) {
  struct Injector : SignalingPlugin {
    SignalingSink* sink = nullptr;
    std::string scheme() const override { return "inj"; }
    void start(SignalingSink& s) override { sink = &s; }
    void send(const PeerId&, const void*, size_t) override {}
    void stop() override { sink = nullptr; }
  };
  auto hub = std::make_shared<SignalingHub>();
  auto injector = std::make_shared<Injector>();
  HostConfig c = p2p_config(hub, "a");
  c.signaling.push_back(injector);
  Host a(c), b(p2p_config(hub, "b"));
  ASSERT_NE(a.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  const PeerId mallory = *PeerId::parse("inj:mallory");
  std::vector<uint8_t> big(kMaxSignalingBlob + 1, 0x50), junk(100);
  for (size_t i = 0; i < junk.size(); ++i)
    junk[i] = uint8_t(i * 37 + 11);
  injector->sink->deliver(mallory, nullptr, 0);
  injector->sink->deliver(mallory, big.data(), big.size());
  injector->sink->deliver(mallory, junk.data(), junk.size());
  injector->sink->deliver(mallory, "PL", 2);
  ASSERT_TRUE(pump_until({&a}, [&] { return a.counters().signaling_invalid >= 4; }));
  EXPECT_EQ(a.counters().signaling_invalid, 4u);

  // A flood from another thread: whatever is not dropped is read, and all of it is garbage.
  const uint64_t kFlood = 20000;
  std::thread flood([&] {
    for (uint64_t i = 0; i < kFlood; ++i)
      injector->sink->deliver(mallory, junk.data(), junk.size());
  });
  flood.join();
  ASSERT_TRUE(pump_until({&a}, [&] {
    auto k = a.counters();
    return k.signaling_invalid + k.signaling_dropped >= 4 + kFlood;
  }));
  auto k = a.counters();
  EXPECT_EQ(k.signaling_invalid + k.signaling_dropped, 4 + kFlood);
  EXPECT_EQ(k.signaling_received, 4 + kFlood);  // every blob delivered, the bad and the dropped ones too
  EXPECT_EQ(k.connections, 0u);

  // The Host still works.
  EventRecorder eb(b);
  ConnectionHandle cb = b.connect(SignalingHub::id("a")).value_or(kInvalidConnection);
  EXPECT_TRUE(pump_until({&a, &b}, [&] { return eb.find(ConnectionEventKind::kConnected, cb).has_value(); }));
}

// Interfaces filtered down to none: a clear end reason, not libnice's fallback to every interface.
TEST(P2PConnect, EveryInterfaceDenied_ClearEndReason) {
  auto hub = std::make_shared<SignalingHub>();
  HostConfig c = p2p_config(hub, "a");
  c.ice.interfaces_deny = {"lo"};
  Host a(c), b(p2p_config(hub, "b"));
  EventRecorder ea(a);
  ASSERT_NE(b.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  ConnectionHandle h = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  auto e = wait_closed({&a, &b}, ea, h, 5s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->info.end_reason, uint32_t(EndReason::kMiscNoRoute));
  EXPECT_NE(e->info.end_debug.find("interfaces_deny"), std::string::npos) << e->info.end_debug;
}

// A lingering close keeps the ICE path until the peer has everything: 4 MiB sent just before the close all
// arrive, then the close with the application's reason.
TEST(P2PConnect, CloseWithLinger_PeerReceivesEverythingThenTheClose) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ASSERT_NE(b.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  ConnectionHandle c = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until({&a, &b}, [&] {
    return ea.find(ConnectionEventKind::kConnected, c) && eb.find(ConnectionEventKind::kConnected);
  }));
  ConnectionHandle s = eb.find(ConnectionEventKind::kConnected)->info.handle;
  const size_t kCount = 64, kSize = 64 << 10;
  for (uint64_t i = 0; i < kCount; ++i) {
    auto m = make_message(i, kSize);
    ASSERT_EQ(a.send(c, m.data(), m.size()), SendResult::kOk);
  }
  ASSERT_TRUE(a.close(c, CloseMode::kAfterDelivery, 1234, "done"));
  uint64_t next = 0;
  bool intact = true;
  std::vector<Message> got;
  ASSERT_TRUE(pump_until(
      {&a, &b},
      [&] {
        got.clear();
        b.receive(s, got);
        for (const Message& m : got)
          intact = intact && check_message(next++, m.data(), m.size());
        return eb.find(ConnectionEventKind::kClosed, s).has_value();
      },
      10s))
      << "b saw no close; " << next << " messages arrived";
  got.clear();
  b.receive(s, got);
  for (const Message& m : got)
    intact = intact && check_message(next++, m.data(), m.size());
  EXPECT_TRUE(intact);
  EXPECT_EQ(next, kCount);
  auto e = *eb.find(ConnectionEventKind::kClosed, s);
  EXPECT_EQ(e.info.end_reason, 1234u);
  EXPECT_EQ(e.info.end_debug, "done");
}

}  // namespace
}  // namespace peerlink::test
