// XMPP signaling across the NAT lab: Prosody on the lab's internet, peers behind real kernel NATs, and the
// only TURN server the peers know is the one Prosody hands out (XEP-0215, mod_turn_external with coturn's
// use-auth-secret), whose credentials expire and are refreshed.
#include <gtest/gtest.h>

#include <atomic>

#include "netlab/lab.hpp"
#include "xmpp/xmpp_test_util.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;
using netlab::Lab;
using netlab::NatType;
using netlab::NetnsScope;

TEST(XmppNatLab, PortRestrictedAndSymmetricNats_TurnOnlyFromXep0215_ConnectedAcrossACredentialRefresh) {
  XMPP_REQUIRE_PROSODY();
  std::string why;
  if (!netlab::have_root_and_tools(&why)) GTEST_SKIP() << why;
  Lab lab;
  const netlab::Site sa = lab.add_site(NatType::kPortRestricted), sb = lab.add_site(NatType::kSymmetric);
  constexpr int kTtl = 16;  // seconds of validity of each TURN credential the server hands out
  ProsodyOptions po;
  po.netns = lab.internet_ns();
  po.ip = lab.internet_host_ip(0);
  po.turn_host = lab.turn_rest_server().ip;
  po.turn_port = lab.turn_rest_server().port;
  po.turn_secret = lab.turn_secret();
  po.turn_ttl_seconds = kTtl;
  ProsodyServer server(po);
  server.start();

  std::atomic<int> offers{0};   // the plugins' log: XEP-0215 answered
  std::atomic<int> applied{0};  // the Hosts' log: the offered servers are in use
  auto make = [&](const netlab::Site& site, const std::string& user) {
    XmppOptions o = server.client(user);
    o.log_level = LogLevel::kInfo;
    o.log_sink = [&offers](LogLevel, const std::string& line) {
      if (line.find("the server offers 1 STUN and 1 TURN") != std::string::npos) ++offers;
    };
    auto host_log = [&applied](LogLevel, const std::string& line) {
      if (line.find("1 STUN, 1 TURN") != std::string::npos) ++applied;
    };
    NetnsScope scope(site.peer_ns(0));
    return std::make_unique<XmppPeer>(o, 15s, std::vector<std::string>{"eth0"},
                                      host_log);  // no STUN, no TURN
  };
  std::unique_ptr<XmppPeer> alice = make(sa, "alice"), bob = make(sb, "bob");
  ASSERT_TRUE(alice->online());
  ASSERT_TRUE(bob->online());
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(pump_until(
      {alice->host.get(), bob->host.get()}, [&] { return offers >= 2 && applied >= 2; }, 5s));
  ASSERT_TRUE(bob->host->listen_p2p());
  ASSERT_TRUE(alice->host->listen_p2p());
  ConnectionHandle ca, cb;
  ASSERT_TRUE(xmpp_connect(*alice, *bob, xmpp_id(server.jid("bob")), ca, cb));
  for (auto [host, c] : {std::pair{alice->host.get(), ca}, std::pair{bob->host.get(), cb}}) {
    const ConnectionInfo info = *host->connection_info(c);
    EXPECT_TRUE(info.relayed);
    EXPECT_EQ(info.route, RouteType::kRelay);
  }
  EXPECT_TRUE(transfer(*alice->host, ca, *bob->host, cb, 64, 16 << 10));

  // Both plugins refresh the credentials (at half their life), and the first ones expire.
  ASSERT_TRUE(pump_until(
      {alice->host.get(), bob->host.get()}, [&] { return offers >= 4; }, 15s));
  pump_until(
      {alice->host.get(), bob->host.get()},
      [&] { return std::chrono::steady_clock::now() > t0 + std::chrono::seconds(kTtl + 2); }, 30s);
  // The connection made with the first credentials is still up...
  EXPECT_TRUE(transfer(*alice->host, ca, *bob->host, cb, 64, 16 << 10));
  EXPECT_TRUE(transfer(*bob->host, cb, *alice->host, ca, 8, 1000));
  // ... and a new one, which allocates a relay with the refreshed credentials (the first are refused
  // by coturn now), connects.
  ConnectionHandle cb2, ca2;
  ASSERT_TRUE(xmpp_connect(*bob, *alice, xmpp_id(server.jid("alice")), cb2, ca2));
  EXPECT_TRUE(bob->host->connection_info(cb2)->relayed);
  EXPECT_TRUE(transfer(*bob->host, cb2, *alice->host, ca2, 8, 1000));
}

}  // namespace
}  // namespace peerlink::test
