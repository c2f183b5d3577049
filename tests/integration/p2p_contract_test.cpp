// The signaling contract as the Host enforces it, and what a peer-to-peer connection tells the application
// when: plugins that speak for another scheme or serve two Hosts, connecting to oneself, a Host destroyed
// mid-setup, virtual ports, and the information of a request before and after its handshake.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

// A plugin the test drives by hand: it delivers what the test tells it to.
struct HandPlugin : SignalingPlugin {
  explicit HandPlugin(std::string s) : scheme_(std::move(s)) {}
  std::string scheme_;
  SignalingSink* sink = nullptr;
  std::string scheme() const override { return scheme_; }
  void start(SignalingSink& s) override { sink = &s; }
  void send(const PeerId&, const void*, size_t) override {}
  void stop() override { sink = nullptr; }
};

// A plugin may only name senders of its own scheme: a "dir" plugin claiming an xmpp peer is refused and
// counted, and no request is raised for it.
TEST(P2PContract, DeliveryFromAnotherScheme_RefusedAndCounted) {
  auto hub = std::make_shared<SignalingHub>();
  auto dir = std::make_shared<HandPlugin>("dir");
  HostConfig c = p2p_config(hub, "b");
  c.signaling.push_back(dir);
  Host b(c), a(p2p_config(hub, "a"));
  EventRecorder eb(b);
  ListenOptions lo;
  lo.auto_accept = false;
  ASSERT_TRUE(b.listen_p2p(lo));
  // A genuine offer, taken from a's first blob to b, replayed by the "dir" plugin under an xmpp name.
  struct Tap : SignalingPlugin {  // keeps the first blob the Host sends (on its service thread)
    std::mutex mutex;
    std::vector<uint8_t> first;
    std::string scheme() const override { return "tap"; }
    void start(SignalingSink&) override {}
    void send(const PeerId&, const void* blob, size_t size) override {
      std::lock_guard<std::mutex> lock(mutex);
      if (first.empty())
        first.assign(static_cast<const uint8_t*>(blob), static_cast<const uint8_t*>(blob) + size);
    }
    void stop() override {}
    std::vector<uint8_t> taken() {
      std::lock_guard<std::mutex> lock(mutex);
      return first;
    }
  };
  auto tap = std::make_shared<Tap>();
  HostConfig tc = test_config();
  tc.signaling.push_back(tap);
  tc.ice.interfaces_allow = {"lo"};
  Host tapper(tc);
  ASSERT_TRUE(tapper.connect(*PeerId::parse("tap:b")));
  ASSERT_TRUE(pump_until({&tapper}, [&] { return !tap->taken().empty(); }));
  const std::vector<uint8_t> offer = tap->taken();

  dir->sink->deliver(*PeerId::parse("xmpp:mallory@example.org"), offer.data(), offer.size());
  ASSERT_TRUE(pump_until({&b}, [&] { return b.counters().signaling_wrong_scheme == 1; }));
  pump_until(
      {&b}, [] { return false; }, 200ms);
  EXPECT_FALSE(eb.find(ConnectionEventKind::kIncomingRequest)) << "a request from a forged name was raised";
  EXPECT_EQ(b.counters().signaling_received, 1u);
  // An exact sender outside the scheme is refused the same way.
  dir->sink->deliver(*PeerId::parse("dir:mallory"), offer.data(), offer.size(), *PeerId::parse("xmpp:m@x/y"));
  ASSERT_TRUE(pump_until({&b}, [&] { return b.counters().signaling_wrong_scheme == 2; }));
  // The same offer under the plugin's own scheme is a request (the Host does not refuse the blob itself),
  // and the request shows the exact sender the plugin named beside the name the Host matches.
  dir->sink->deliver(*PeerId::parse("dir:mallory"), offer.data(), offer.size(),
                     *PeerId::parse("dir:mallory/phone"));
  ASSERT_TRUE(pump_until({&b}, [&] { return eb.find(ConnectionEventKind::kIncomingRequest).has_value(); }));
  const ConnectionInfo request = eb.find(ConnectionEventKind::kIncomingRequest)->info;
  EXPECT_EQ(request.remote_peer, *PeerId::parse("dir:mallory"));
  EXPECT_EQ(request.remote_peer_exact, *PeerId::parse("dir:mallory/phone"));
}

TEST(P2PContract, OnePluginInstanceForTwoHosts_Refused) {
  auto hub = std::make_shared<SignalingHub>();
  HostConfig c = p2p_config(hub, "a");
  {
    Host first(c);
    Result<std::unique_ptr<Host>> second = Host::create(c);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, ErrorCode::kAlreadyExists);
    EXPECT_NE(second.error().message.find("already serves another Host"), std::string::npos)
        << second.error().message;
  }
  // Free again once the first Host is gone.
  EXPECT_TRUE(Host::create(c));
  // Refused after another plugin of the configuration was started: that one is stopped again, and free.
  {
    Host first(c);
    struct Counting : HandPlugin {
      Counting() : HandPlugin("counted") {}
      int starts = 0, stops = 0;
      void start(SignalingSink& s) override {
        ++starts;
        HandPlugin::start(s);
      }
      void stop() override {
        ++stops;
        HandPlugin::stop();
      }
    };
    auto counted = std::make_shared<Counting>();
    HostConfig both = test_config();
    both.signaling = {counted, c.signaling.front()};  // the second serves `first`
    Result<std::unique_ptr<Host>> refused = Host::create(both);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kAlreadyExists);
    EXPECT_EQ(counted->starts, 1);
    EXPECT_EQ(counted->stops, 1);
    HostConfig alone = test_config();
    alone.signaling = {counted};
    EXPECT_TRUE(Host::create(alone));
  }
  // The same instance twice in one configuration.
  c.signaling.push_back(c.signaling.front());
  Result<std::unique_ptr<Host>> twice = Host::create(c);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kInvalidConfig);
}

TEST(P2PContract, PluginStartThrows_CreateSaysPluginFailed) {
  struct Throwing : HandPlugin {
    Throwing() : HandPlugin("boom") {}
    void start(SignalingSink&) override { throw std::runtime_error("no network configured"); }
  };
  HostConfig c = test_config();
  c.signaling.push_back(std::make_shared<Throwing>());
  Result<std::unique_ptr<Host>> h = Host::create(c);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, ErrorCode::kPluginFailed);
  EXPECT_NE(h.error().message.find("no network configured"), std::string::npos) << h.error().message;
}

// A plugin whose own thread offers ICE servers until stop() joins it: the Host's destructor stops the plugins
// before it tears down what their offers go to (it used to destroy the resolver first).
TEST(P2PContract, PluginOffersServersUntilStopped_HostDestroyedSafely) {
  struct Offering : HandPlugin {
    Offering() : HandPlugin("offer") {}
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> offers{0};
    std::thread thread;
    void start(SignalingSink& s) override {
      thread = std::thread([this, &s] {
        StunServer stun;
        stun.host = "127.0.0.1";
        stun.port = 3478;
        while (!stopping) {
          s.offer_ice_servers({stun}, {});
          ++offers;
        }
      });
    }
    void stop() override {
      stopping = true;
      thread.join();
    }
  };
  for (int i = 0; i < 5; ++i) {
    auto plugin = std::make_shared<Offering>();
    {
      HostConfig c = test_config();
      c.signaling.push_back(plugin);
      Host h(c);
      while (plugin->offers < 100)
        std::this_thread::yield();
    }
    EXPECT_TRUE(plugin->stopping);
  }
}

// Connecting to the Host's own peer id (as its plugin names it) fails at once instead of timing out.
TEST(P2PContract, ConnectToOwnPeerId_RefusedAtOnce) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a"));
  ASSERT_TRUE(a.listen_p2p());
  Result<ConnectionHandle> c = a.connect(SignalingHub::id("a"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kSelf);
  EXPECT_NE(c.error().message.find("mem:a"), std::string::npos) << c.error().message;
  EXPECT_TRUE(a.connections().empty());
}

size_t open_descriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

// Hosts with signaling, made, connected peer to peer and destroyed, again and again, leave no descriptor
// behind: each one left its ICE agents and its GLib context's eventfd (libnice closes an agent on the
// context, which nobody ran once the service thread was gone).
TEST(P2PContract, HostsMadeConnectedAndDestroyed_LeaveNoDescriptor) {
  auto hub = std::make_shared<SignalingHub>();
  auto cycle = [&] {
    Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
    EventRecorder ea(a);
    ASSERT_TRUE(b.listen_p2p());
    const ConnectionHandle c = a.connect(SignalingHub::id("b")).value_or(kInvalidConnection);
    ASSERT_TRUE(
        pump_until({&a, &b}, [&] { return ea.find(ConnectionEventKind::kConnected, c).has_value(); }));
  };
  cycle();  // whatever GLib and libnice make once per process
  const size_t before = open_descriptors();
  for (int i = 0; i < 5; ++i)
    cycle();
  EXPECT_EQ(open_descriptors(), before);
}

// A Host destroyed while a connection is being set up tells the peer through the signaling: the peer's
// pending request ends at once, long before any timeout.
TEST(P2PContract, HostDestroyedDuringSetup_PeerToldAtOnce) {
  auto hub = std::make_shared<SignalingHub>();
  Host b(p2p_config(hub, "b", 20s));
  EventRecorder eb(b);
  ListenOptions lo;
  lo.auto_accept = false;  // the request waits at b: the setup is still going on when a goes away
  ASSERT_TRUE(b.listen_p2p(lo));
  {
    Host a(p2p_config(hub, "a", 20s));
    ASSERT_TRUE(a.connect(SignalingHub::id("b")));
    ASSERT_TRUE(
        pump_until({&a, &b}, [&] { return eb.find(ConnectionEventKind::kIncomingRequest).has_value(); }));
  }
  const auto destroyed = std::chrono::steady_clock::now();
  auto request = eb.find(ConnectionEventKind::kIncomingRequest)->info.handle;
  auto closed = wait_closed({&b}, eb, request, 5s);
  ASSERT_TRUE(closed) << "the peer was not told";
  EXPECT_LT(std::chrono::steady_clock::now() - destroyed, 10s);  // not its 20 s connect timeout
  EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kRemoteRejected));
  EXPECT_NE(closed->info.end_debug.find("the peer gave up"), std::string::npos) << closed->info.end_debug;
}

// A request raised at signaling time names the peer and the key its signaling carried, not yet proven;
// once connected the handshake has proven that key.
TEST(P2PContract, IncomingRequest_KeyFromSignalingThenProven) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ListenOptions lo;
  lo.auto_accept = false;
  ASSERT_TRUE(b.listen_p2p(lo));
  ConnectionHandle c = a.connect(SignalingHub::id("b")).value();
  ASSERT_TRUE(
      pump_until({&a, &b}, [&] { return eb.find(ConnectionEventKind::kIncomingRequest).has_value(); }));
  const ConnectionInfo request = eb.find(ConnectionEventKind::kIncomingRequest)->info;
  EXPECT_EQ(request.remote_peer, SignalingHub::id("a"));
  EXPECT_EQ(request.remote_key, a.identity().public_key());
  EXPECT_EQ(request.remote_fingerprint, a.identity().fingerprint());
  EXPECT_FALSE(request.remote_key_proven);
  EXPECT_EQ(request.state, ConnectionState::kConnecting);
  ASSERT_TRUE(b.accept(request.handle));
  ASSERT_TRUE(pump_until({&a, &b}, [&] {
    return ea.find(ConnectionEventKind::kConnected, c) &&
           eb.find(ConnectionEventKind::kConnected, request.handle);
  }));
  const ConnectionInfo connected = eb.find(ConnectionEventKind::kConnected, request.handle)->info;
  EXPECT_TRUE(connected.remote_key_proven);
  EXPECT_EQ(connected.remote_key, a.identity().public_key());
  // The route's addresses, both ends (ICE over loopback here).
  const ConnectionInfo ai = *a.connection_info(c);
  EXPECT_EQ(ai.route, RouteType::kHost);
  EXPECT_TRUE(ai.local_address.is_loopback()) << ai.local_address.to_string();
  EXPECT_NE(ai.local_address.port(), 0);
  EXPECT_EQ(ai.remote_address, connected.local_address);
  EXPECT_EQ(connected.remote_address, ai.local_address);
}

// Listeners per virtual port: each gets the requests for its port; a port nobody listens on is refused
// with a reason that names it.
TEST(P2PContract, VirtualPorts_EachListenerGetsItsOwnRequests) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ListenSocketHandle games = b.listen_p2p(7).value();
  ListenSocketHandle chat = b.listen_p2p(9).value();
  ASSERT_NE(games, chat);
  ConnectOptions to7, to9, to8;
  to7.virtual_port = 7;
  to9.virtual_port = 9;
  to8.virtual_port = 8;
  ConnectionHandle c7 = a.connect(SignalingHub::id("b"), to7).value();
  ConnectionHandle c9 = a.connect(SignalingHub::id("b"), to9).value();
  ConnectionHandle c8 = a.connect(SignalingHub::id("b"), to8).value();
  ASSERT_TRUE(pump_until({&a, &b}, [&] {
    return ea.find(ConnectionEventKind::kConnected, c7) && ea.find(ConnectionEventKind::kConnected, c9) &&
           ea.find(ConnectionEventKind::kClosed, c8) && eb.count(ConnectionEventKind::kConnected) == 2;
  }));
  auto refused = *ea.find(ConnectionEventKind::kClosed, c8);
  EXPECT_EQ(refused.info.end_reason, uint32_t(EndReason::kRemoteRejected));
  EXPECT_NE(refused.info.end_debug.find("virtual port 8"), std::string::npos) << refused.info.end_debug;
  for (const ConnectionEvent& e : eb.events()) {
    if (e.kind != ConnectionEventKind::kConnected) continue;
    EXPECT_EQ(e.info.listen_socket, e.info.virtual_port == 7 ? games : chat);
    EXPECT_TRUE(e.info.virtual_port == 7 || e.info.virtual_port == 9) << e.info.virtual_port;
  }
  EXPECT_EQ(a.connection_info(c7)->virtual_port, 7);
  // Symmetric connects are matched per peer and virtual port (c7 is not symmetric, so it does not count).
  ConnectOptions sym7 = to7;
  sym7.symmetric = true;
  ConnectionHandle s7 = a.connect(SignalingHub::id("b"), sym7).value();
  EXPECT_NE(s7, c7);
  EXPECT_EQ(a.connect(SignalingHub::id("b"), sym7).value(), s7);
}

// A hub plugin whose names stand for keys, as the LAN beacon's do: `bound` gives the only key a name may
// have (SignalingPlugin::key_matches). It also lets the test reach the sink (network_changed).
struct KeyBoundPlugin : SignalingPlugin {
  explicit KeyBoundPlugin(std::shared_ptr<SignalingPlugin> i) : inner(std::move(i)) {}
  std::shared_ptr<SignalingPlugin> inner;
  std::map<std::string, PublicKey> bound;  // written before the Host starts
  std::atomic<SignalingSink*> sink{nullptr};
  std::string scheme() const override { return inner->scheme(); }
  void start(SignalingSink& s) override {
    sink = &s;
    inner->start(s);
  }
  bool key_matches(const PeerId& peer, const PublicKey& key) const override {
    auto it = bound.find(std::string(peer.name()));
    return it == bound.end() || it->second == key;
  }
  void send(const PeerId& to, const void* blob, size_t size) override { inner->send(to, blob, size); }
  void stop() override { inner->stop(); }
};

HostConfig key_bound_config(const std::shared_ptr<SignalingHub>& hub, const std::string& name,
                            std::shared_ptr<KeyBoundPlugin>* plugin) {
  HostConfig c = p2p_config(hub, name);
  *plugin = std::make_shared<KeyBoundPlugin>(c.signaling.front());
  c.signaling = {*plugin};
  return c;
}

// A name bound to a key: a peer answering under it with another key is refused before any handshake, on
// the connecting side (kRemoteKeyMismatch) and on the accepting side (the request is rejected unseen);
// with the right keys it connects.
TEST(P2PContract, NameBoundToAKey_AnotherKeyRefusedBothWays) {
  auto hub = std::make_shared<SignalingHub>();
  const PublicKey stranger = Identity::generate().public_key();
  {  // a connects to "b", whose name a's plugin binds to another key
    std::shared_ptr<KeyBoundPlugin> pa;
    HostConfig ca = key_bound_config(hub, "a", &pa);
    pa->bound["b"] = stranger;
    Host a(ca), b(p2p_config(hub, "b"));
    EventRecorder ea(a);
    ASSERT_TRUE(b.listen_p2p());
    ConnectionHandle c = a.connect(SignalingHub::id("b")).value();
    std::optional<ConnectionEvent> closed = wait_closed({&a, &b}, ea, c);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kRemoteKeyMismatch)) << closed->info.end_debug;
    EXPECT_FALSE(ea.find(ConnectionEventKind::kConnected, c));
  }
  {  // b's plugin binds "a" to another key: a's request never reaches b's application
    std::shared_ptr<KeyBoundPlugin> pb;
    HostConfig cb = key_bound_config(hub, "b", &pb);
    pb->bound["a"] = stranger;
    Host a(p2p_config(hub, "a")), b(cb);
    EventRecorder ea(a), eb(b);
    ASSERT_TRUE(b.listen_p2p());
    ConnectionHandle c = a.connect(SignalingHub::id("b")).value();
    std::optional<ConnectionEvent> closed = wait_closed({&a, &b}, ea, c);
    ASSERT_TRUE(closed);  // refused by the peer: a rejection, saying why
    EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kRemoteRejected)) << closed->info.end_debug;
    EXPECT_NE(closed->info.end_debug.find("the key is not the one the name stands for"), std::string::npos)
        << closed->info.end_debug;
    EXPECT_EQ(eb.count(ConnectionEventKind::kIncomingRequest), 0u);
    EXPECT_EQ(eb.count(ConnectionEventKind::kConnected), 0u);
  }
  {  // bound to the right keys: connected
    std::shared_ptr<KeyBoundPlugin> pa, pb;
    HostConfig ca = key_bound_config(hub, "a", &pa), cb = key_bound_config(hub, "b", &pb);
    pa->bound["b"] = cb.identity.public_key();
    pb->bound["a"] = ca.identity.public_key();
    Host a(ca), b(cb);
    EventRecorder ea(a);
    ASSERT_TRUE(b.listen_p2p());
    ConnectionHandle c = a.connect(SignalingHub::id("b")).value();
    EXPECT_TRUE(
        pump_until({&a, &b}, [&] { return ea.find(ConnectionEventKind::kConnected, c).has_value(); }));
  }
}

// A plugin that saw the network change makes connected peer-to-peer connections restart ICE at once; the
// connection goes on, its data exact.
TEST(P2PContract, NetworkChanged_ConnectedConnectionsRestartIceAndGoOn) {
  auto hub = std::make_shared<SignalingHub>();
  std::shared_ptr<KeyBoundPlugin> pa;
  Host a(key_bound_config(hub, "a", &pa)), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ASSERT_TRUE(b.listen_p2p());
  ConnectionHandle c = a.connect(SignalingHub::id("b")).value();
  ASSERT_TRUE(pump_until({&a, &b}, [&] {
    return ea.find(ConnectionEventKind::kConnected, c) && eb.find(ConnectionEventKind::kConnected);
  }));
  const ConnectionHandle s = eb.find(ConnectionEventKind::kConnected)->info.handle;
  EXPECT_EQ(a.counters().ice_restarts, 0u);
  pa->sink.load()->network_changed("eth9 up (test)");
  EXPECT_TRUE(pump_until({&a, &b}, [&] { return a.counters().ice_restarts == 1; }));
  EXPECT_TRUE(transfer(a, c, b, s, 64, 16 << 10));
  EXPECT_TRUE(transfer(b, s, a, c, 16, 1024));
  EXPECT_EQ(a.connection_info(c)->state, ConnectionState::kConnected);
}

}  // namespace
}  // namespace peerlink::test
