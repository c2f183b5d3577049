// Peer-to-peer connections through the NAT lab: real Hosts in network namespaces behind nftables NATs,
// libnice ICE with coturn for STUN and TURN, in-process signaling between them.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <memory>
#include <string>
#include <tuple>

#include "integration/host_test_util.hpp"
#include "netlab/lab.hpp"
#include "netlab/lab_ice.hpp"
#include "peerlink/testkit/in_process_signaling.hpp"

namespace peerlink::test {
namespace {

using netlab::Lab;
using netlab::lab_ice;
using netlab::NatType;
using netlab::NetnsScope;
using netlab::Site;

#define NETLAB_REQUIRE_ROOT()                                      \
  do {                                                             \
    std::string why_;                                              \
    if (!netlab::have_root_and_tools(&why_)) GTEST_SKIP() << why_; \
  } while (0)

// A Host whose sockets and service thread live in namespace ns (a thread inherits its creator's namespace).
struct Peer {
  Peer(const std::string& ns, const std::shared_ptr<SignalingHub>& hub, const std::string& name,
       const IceConfig& ice, std::chrono::milliseconds connect_timeout = 10s) {
    HostConfig c = test_config();
    c.signaling.push_back(hub->plugin(name));
    c.ice = ice;
    c.connect_timeout = connect_timeout;
    NetnsScope scope(ns);
    host = std::make_unique<Host>(std::move(c));
    events = std::make_unique<EventRecorder>(*host);
  }
  std::unique_ptr<Host> host;
  std::unique_ptr<EventRecorder> events;
};

struct Pair {
  ConnectionHandle client = kInvalidConnection;  // on a
  ConnectionHandle server = kInvalidConnection;  // on b
};

// a connects to b (listening); both must report the connection within the timeout.
::testing::AssertionResult connect_pair(Peer& a, Peer& b, Pair& out, std::chrono::milliseconds timeout = 15s,
                                        bool listen = true) {
  if (listen && b.host->listen_p2p().value_or(kInvalidListenSocket) == kInvalidListenSocket)
    return ::testing::AssertionFailure() << "listen_p2p";
  Result<ConnectionHandle> c = a.host->connect(SignalingHub::id("b"));
  if (!c) return ::testing::AssertionFailure() << "connect: " << c.error().message;
  out.client = *c;
  const bool ok = pump_until(
      {a.host.get(), b.host.get()},
      [&] {
        return (a.events->find(ConnectionEventKind::kConnected, out.client) &&
                b.events->find(ConnectionEventKind::kConnected)) ||
               a.events->find(ConnectionEventKind::kClosed, out.client) ||
               b.events->find(ConnectionEventKind::kClosed);
      },
      timeout);
  if (auto closed = a.events->find(ConnectionEventKind::kClosed, out.client))
    return ::testing::AssertionFailure()
           << "a's connection closed: " << closed->info.end_reason << " " << closed->info.end_debug;
  if (auto closed = b.events->find(ConnectionEventKind::kClosed))
    return ::testing::AssertionFailure()
           << "b's connection closed: " << closed->info.end_reason << " " << closed->info.end_debug;
  if (!ok) return ::testing::AssertionFailure() << "not connected within " << timeout.count() << " ms";
  out.server = b.events->find(ConnectionEventKind::kConnected)->info.handle;
  return ::testing::AssertionSuccess();
}

bool ice_can_go_direct(NatType x, NatType y) {
  if (x == NatType::kUdpBlocked || y == NatType::kUdpBlocked) return false;
  auto hard = [](NatType t) { return t == NatType::kSymmetric; };
  auto restricted = [](NatType t) { return t == NatType::kSymmetric || t == NatType::kPortRestricted; };
  return !((hard(x) && restricted(y)) || (hard(y) && restricted(x)));
}

class NatPairing : public ::testing::TestWithParam<std::tuple<NatType, NatType>> {};

TEST_P(NatPairing, ConnectsDirectWhereIcePunchesRelayedOtherwise_20MBExact) {
  NETLAB_REQUIRE_ROOT();
  const auto [ta, tb] = GetParam();
  Lab lab;
  Site sa = lab.add_site(ta), sb = lab.add_site(tb);
  auto hub = std::make_shared<SignalingHub>();
  Peer a(sa.peer_ns(0), hub, "a", lab_ice(lab)), b(sb.peer_ns(0), hub, "b", lab_ice(lab));
  Pair p;
  ASSERT_TRUE(connect_pair(a, b, p));

  const bool direct = ice_can_go_direct(ta, tb);
  for (auto [host, c] : {std::pair{a.host.get(), p.client}, std::pair{b.host.get(), p.server}}) {
    ConnectionInfo info = *host->connection_info(c);
    EXPECT_EQ(info.relayed, !direct) << to_string(info.route);
    if (direct) {
      EXPECT_TRUE(info.route == RouteType::kHost || info.route == RouteType::kServerReflexive ||
                  info.route == RouteType::kPeerReflexive)
          << to_string(info.route);
    } else {
      EXPECT_EQ(info.route, RouteType::kRelay);
    }
  }
  EXPECT_EQ(a.host->connection_info(p.client)->remote_key, b.host->identity().public_key());

  // 20 MB one way, a little the other.
  EXPECT_TRUE(transfer(*a.host, p.client, *b.host, p.server, 320, 64 << 10));
  EXPECT_TRUE(transfer(*b.host, p.server, *a.host, p.client, 16, 4096));
}

std::string pairing_name(const ::testing::TestParamInfo<std::tuple<NatType, NatType>>& info) {
  auto name = [](NatType t) {
    std::string s = netlab::to_string(t);
    s.erase(std::remove(s.begin(), s.end(), '-'), s.end());
    return s;
  };
  return name(std::get<0>(info.param)) + "_" + name(std::get<1>(info.param));
}

std::vector<std::tuple<NatType, NatType>> all_pairings() {
  const NatType types[] = {NatType::kNone, NatType::kFullCone, NatType::kPortRestricted, NatType::kSymmetric,
                           NatType::kUdpBlocked};
  std::vector<std::tuple<NatType, NatType>> out;
  for (size_t i = 0; i < 5; ++i)
    for (size_t j = i; j < 5; ++j)
      out.emplace_back(types[i], types[j]);
  return out;
}

INSTANTIATE_TEST_SUITE_P(All15, NatPairing, ::testing::ValuesIn(all_pairings()), pairing_name);

TEST(NatLab, TwoPeersOnOneLanBehindOneNat_UseHostCandidates) {
  NETLAB_REQUIRE_ROOT();
  Lab lab;
  Site site = lab.add_site(NatType::kPortRestricted, 2);
  auto hub = std::make_shared<SignalingHub>();
  Peer a(site.peer_ns(0), hub, "a", lab_ice(lab)), b(site.peer_ns(1), hub, "b", lab_ice(lab));
  Pair p;
  ASSERT_TRUE(connect_pair(a, b, p));
  ConnectionInfo info = *a.host->connection_info(p.client);
  EXPECT_EQ(info.route, RouteType::kHost);
  EXPECT_EQ(info.remote_address.to_string(),
            site.peer_ip(1) + ":" + std::to_string(info.remote_address.port()));
  EXPECT_EQ(b.host->connection_info(p.server)->route, RouteType::kHost);
  EXPECT_TRUE(transfer(*a.host, p.client, *b.host, p.server, 16, 64 << 10));
}

TEST(NatLab, LossyDuplicatingSignaling_StillConnects) {
  NETLAB_REQUIRE_ROOT();
  Lab lab;
  Site sa = lab.add_site(NatType::kPortRestricted), sb = lab.add_site(NatType::kFullCone);
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto hub = std::make_shared<SignalingHub>();
    hub->set_impairment(0.3, 0.5, seed);
    Peer a(sa.peer_ns(0), hub, "a", lab_ice(lab)), b(sb.peer_ns(0), hub, "b", lab_ice(lab));
    Pair p;
    ASSERT_TRUE(connect_pair(a, b, p));
    EXPECT_FALSE(a.host->connection_info(p.client)->relayed);
    EXPECT_TRUE(transfer(*a.host, p.client, *b.host, p.server, 8, 4096));
  }
}

TEST(NatLab, StunAndTurnServerDown_ClearEndReasonWithinConnectTimeout) {
  NETLAB_REQUIRE_ROOT();
  Lab lab;
  Site sa = lab.add_site(NatType::kPortRestricted), sb = lab.add_site(NatType::kSymmetric);
  lab.stop_turn();
  auto hub = std::make_shared<SignalingHub>();
  const auto timeout = 5s;
  Peer a(sa.peer_ns(0), hub, "a", lab_ice(lab), timeout), b(sb.peer_ns(0), hub, "b", lab_ice(lab), timeout);
  ASSERT_NE(b.host->listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  const auto start = std::chrono::steady_clock::now();
  ConnectionHandle c = a.host->connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  ASSERT_NE(c, kInvalidConnection);
  auto e = wait_closed({a.host.get(), b.host.get()}, *a.events, c);
  ASSERT_TRUE(e);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LE(took, timeout + 500ms);
  EXPECT_TRUE(e->info.end_reason == uint32_t(EndReason::kMiscNoRoute) ||
              e->info.end_reason == uint32_t(EndReason::kMiscConnectTimeout))
      << e->info.end_reason << " " << e->info.end_debug;
  EXPECT_NE(e->info.end_debug.find("no relayed candidate"), std::string::npos) << e->info.end_debug;
  EXPECT_NE(e->info.end_debug.find("203.0.113.1:3478"), std::string::npos)
      << "names the server that did not answer: " << e->info.end_debug;
}

// Privacy: a peer that offers only relayed candidates is reached through its TURN relay even where a direct
// path exists, and the other side never sees its own address; the other peer's kinds are its own business.
TEST(NatLab, RelayOnlyPeer_ConnectsThroughTheRelayAndHidesItsAddress) {
  NETLAB_REQUIRE_ROOT();
  Lab lab;
  Site sa = lab.add_site(NatType::kFullCone), sb = lab.add_site(NatType::kNone);
  IceConfig hidden = lab_ice(lab);
  hidden.candidates = candidate_kinds::kRelay;
  auto hub = std::make_shared<SignalingHub>();
  Peer a(sa.peer_ns(0), hub, "a", hidden), b(sb.peer_ns(0), hub, "b", lab_ice(lab));
  Pair p;
  ASSERT_TRUE(connect_pair(a, b, p));
  const ConnectionInfo at_a = *a.host->connection_info(p.client), at_b = *b.host->connection_info(p.server);
  EXPECT_EQ(at_a.route, RouteType::kRelay);
  EXPECT_TRUE(at_a.relayed);
  EXPECT_TRUE(at_b.relayed);
  // b sees a only at the relay: neither a's LAN address nor its router's public one.
  EXPECT_EQ(at_b.remote_address.to_string().rfind(lab.turn_server().ip + ":", 0), 0u)
      << at_b.remote_address.to_string();
  EXPECT_TRUE(transfer(*a.host, p.client, *b.host, p.server, 16, 64 << 10));
}

// Time-limited TURN credentials (coturn's use-auth-secret): expired ones give no relay, so peers that need
// one cannot connect; Host::set_ice_servers() with fresh ones fixes the next connection.
TEST(NatLab, TurnRestCredentials_ExpiredRefusedThenRefreshedConnectThroughTheRelay) {
  NETLAB_REQUIRE_ROOT();
  Lab lab;
  Site sa = lab.add_site(NatType::kSymmetric), sb = lab.add_site(NatType::kSymmetric);
  auto rest = [&](const std::string& user, std::chrono::seconds ttl) {
    const auto server = lab.turn_rest_server();
    return std::vector<TurnServer>{TurnServer::with_shared_secret(server.ip, server.port, TurnTransport::kUdp,
                                                                  user, lab.turn_secret(), ttl)};
  };
  IceConfig expired;
  expired.turn_servers = rest("peer", -std::chrono::hours(1));
  expired.interfaces_allow = {"eth0"};
  auto hub = std::make_shared<SignalingHub>();
  Peer a(sa.peer_ns(0), hub, "a", expired, 4s), b(sb.peer_ns(0), hub, "b", expired, 4s);
  ASSERT_NE(b.host->listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  ConnectionHandle c = a.host->connect(SignalingHub::id("b")).value_or(kInvalidConnection);
  auto e = wait_closed({a.host.get(), b.host.get()}, *a.events, c);
  ASSERT_TRUE(e);
  EXPECT_NE(e->info.end_debug.find("no relayed candidate from TURN " + lab.turn_rest_server().ip),
            std::string::npos)
      << e->info.end_debug;
  EXPECT_TRUE(a.host->close(c));
  ASSERT_TRUE(pump_until(
      {a.host.get(), b.host.get()}, [&] { return b.events->find(ConnectionEventKind::kClosed).has_value(); },
      10s));
  b.host->close(b.events->find(ConnectionEventKind::kClosed)->info.handle);
  a.events = std::make_unique<EventRecorder>(*a.host);  // the next connect_pair looks at new events only
  b.events = std::make_unique<EventRecorder>(*b.host);

  Result<void> set = a.host->set_ice_servers({}, rest("peer-a", std::chrono::hours(1)));
  ASSERT_TRUE(set) << set.error().message;
  set = b.host->set_ice_servers({}, rest("peer-b", std::chrono::hours(1)));
  ASSERT_TRUE(set) << set.error().message;
  set = a.host->set_ice_servers({{"", 3478}}, {});
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, ErrorCode::kInvalidConfig);
  EXPECT_NE(set.error().message.find("empty host"), std::string::npos) << set.error().message;
  Pair p;
  ASSERT_TRUE(connect_pair(a, b, p, 10s, /*listen=*/false));
  EXPECT_EQ(a.host->connection_info(p.client)->route, RouteType::kRelay);
  EXPECT_TRUE(transfer(*a.host, p.client, *b.host, p.server, 16, 64 << 10));
}

// The signaling service offers the TURN server and its time-limited credentials (as XMPP's XEP-0215 does):
// peers with no TURN server of their own that need a relay connect through it. An offered server whose name
// does not resolve is left out, the others are used.
TEST(NatLab, TurnOfferedByTheSignaling_PeersWithoutTurnConnectThroughTheRelay) {
  NETLAB_REQUIRE_ROOT();
  Lab lab;
  Site sa = lab.add_site(NatType::kSymmetric), sb = lab.add_site(NatType::kSymmetric);
  struct Offering : SignalingPlugin {
    std::shared_ptr<SignalingPlugin> inner;
    std::vector<TurnServer> turn;
    std::string scheme() const override { return inner->scheme(); }
    PeerId local_peer() const override { return inner->local_peer(); }
    void start(SignalingSink& sink) override {
      inner->start(sink);
      sink.offer_ice_servers({}, turn);
    }
    void send(const PeerId& to, const void* blob, size_t size) override { inner->send(to, blob, size); }
    void stop() override { inner->stop(); }
  };
  auto hub = std::make_shared<SignalingHub>();
  std::atomic<int> relays_known{0};  // Hosts that logged using the offered TURN server
  auto peer = [&](const Site& site, const std::string& name) {
    auto plugin = std::make_shared<Offering>();
    plugin->inner = hub->plugin(name);
    const auto server = lab.turn_rest_server();
    plugin->turn = {TurnServer::with_shared_secret("turn.invalid", 3478, TurnTransport::kUdp, name, "x"),
                    TurnServer::with_shared_secret(server.ip, server.port, TurnTransport::kUdp, name,
                                                   lab.turn_secret(), std::chrono::hours(1))};
    HostConfig c = test_config();
    c.signaling.push_back(plugin);
    c.ice.interfaces_allow = {"eth0"};  // and no STUN or TURN server of its own
    c.log_level = LogLevel::kInfo;
    c.log_sink = [&relays_known](LogLevel, const std::string& line) {
      if (line.find("0 STUN, 1 TURN") != std::string::npos) ++relays_known;
    };
    NetnsScope scope(site.peer_ns(0));
    return std::make_unique<Host>(std::move(c));
  };
  std::unique_ptr<Host> a = peer(sa, "a"), b = peer(sb, "b");
  EventRecorder ea(*a), eb(*b);
  ASSERT_TRUE(b->listen_p2p());
  // The offers are resolved in the background (the numeric one at once, the name that does not resolve
  // later): wait for the relay to be known on both sides.
  ASSERT_TRUE(pump_until(
      {a.get(), b.get()}, [&] { return relays_known >= 2; }, 5s));
  ConnectionHandle c = a->connect(SignalingHub::id("b")).value();
  ASSERT_TRUE(pump_until(
      {a.get(), b.get()},
      [&] { return ea.find(ConnectionEventKind::kConnected, c) || ea.find(ConnectionEventKind::kClosed, c); },
      15s));
  auto closed = ea.find(ConnectionEventKind::kClosed, c);
  ASSERT_FALSE(closed) << closed->info.end_debug;
  EXPECT_EQ(a->connection_info(c)->route, RouteType::kRelay);
}

// The router's NAT mappings are flushed mid-transfer (a rebinding: the peer's packets leave from a new
// external port, the old one is dead). The connection must find a new path by itself (ICE restart) and
// deliver everything exactly, without the application reconnecting.
void rebinding_run(NatType ta, NatType tb, bool flush_both) {
  Lab lab;
  Site sa = lab.add_site(ta), sb = lab.add_site(tb);
  auto hub = std::make_shared<SignalingHub>();
  Peer a(sa.peer_ns(0), hub, "a", lab_ice(lab)), b(sb.peer_ns(0), hub, "b", lab_ice(lab));
  Pair p;
  ASSERT_TRUE(connect_pair(a, b, p));
  const RouteType before = a.host->connection_info(p.client)->route;

  // Paced at 8 MB/s (2.5 s in all) so that most of it is sent after the flush (which itself takes a
  // moment: nft and conntrack commands).
  const size_t kCount = 320, kSize = 64 << 10;  // 20 MB
  const double kPaceBytesPerSecond = 8e6;
  uint64_t sent = 0, next = 0;
  bool intact = true, flushed = false;
  std::vector<Message> got;
  const auto start = std::chrono::steady_clock::now();
  auto flushed_at = start;
  pump_until(
      {a.host.get(), b.host.get()},
      [&] {
        const double allowed =
            kPaceBytesPerSecond *
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        while (sent < kCount && double(sent * kSize) < allowed) {
          auto m = make_message(sent, kSize);
          if (a.host->send(p.client, m.data(), m.size()) != SendResult::kOk) break;
          ++sent;
        }
        got.clear();
        b.host->receive(p.server, got);
        for (const Message& m : got)
          intact = intact && check_message(next++, m.data(), m.size());
        if (!flushed && sent >= kCount / 4) {
          lab.flush_nat(sa);
          if (flush_both) lab.flush_nat(sb);
          flushed = true;
          flushed_at = std::chrono::steady_clock::now();
        }
        return next >= kCount || !intact || a.events->find(ConnectionEventKind::kClosed, p.client) ||
               b.events->find(ConnectionEventKind::kClosed, p.server);
      },
      60s);
  ASSERT_TRUE(flushed);
  EXPECT_FALSE(a.events->find(ConnectionEventKind::kClosed, p.client)) << "a's connection ended";
  EXPECT_FALSE(b.events->find(ConnectionEventKind::kClosed, p.server)) << "b's connection ended";
  EXPECT_TRUE(intact) << "message " << next - 1 << " corrupt or out of order";
  EXPECT_EQ(next, kCount) << "delivered before the deadline";
  EXPECT_GE(a.host->counters().ice_restarts + b.host->counters().ice_restarts, 1u);
  const ConnectionInfo after = *a.host->connection_info(p.client);
  EXPECT_EQ(after.state, ConnectionState::kConnected);
  EXPECT_EQ(after.relayed, before == RouteType::kRelay)
      << to_string(before) << " then " << to_string(after.route);
  std::printf(
      "rebinding %s x %s: %s -> %s, %.0f ms from the flush to the last message, restarts a=%llu b=%llu\n",
      netlab::to_string(ta), netlab::to_string(tb), to_string(before), to_string(after.route),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - flushed_at).count(),
      (unsigned long long)a.host->counters().ice_restarts,
      (unsigned long long)b.host->counters().ice_restarts);
}

TEST(NatLab, NatRebindingMidTransfer_PortRestricted_Survives) {
  NETLAB_REQUIRE_ROOT();
  rebinding_run(NatType::kPortRestricted, NatType::kPortRestricted, false);
}

// The full-cone side rebinds: its new port is filtered by the port-restricted peer's NAT.
TEST(NatLab, NatRebindingMidTransfer_FullConeSideOfPortRestrictedPeer_Survives) {
  NETLAB_REQUIRE_ROOT();
  rebinding_run(NatType::kFullCone, NatType::kPortRestricted, false);
}

TEST(NatLab, NatRebindingMidTransfer_BothSitesAtOnce_Survives) {
  NETLAB_REQUIRE_ROOT();
  rebinding_run(NatType::kPortRestricted, NatType::kPortRestricted, true);
}

TEST(NatLab, NatRebindingMidTransfer_RelayedThroughSymmetric_Survives) {
  NETLAB_REQUIRE_ROOT();
  rebinding_run(NatType::kSymmetric, NatType::kSymmetric, false);
}

}  // namespace
}  // namespace peerlink::test
