// Signaling fallback (HostConfig::signaling_fallback) with real components: peers on a LAN of the lab that
// reach each other through a Prosody on that LAN and run a LAN beacon announcing their JIDs. With Prosody
// stopped, a connect to a JID goes on through the beacon, to the peer that holds the key learned for the
// JID over XMPP earlier; a LAN peer claiming the JID with another key is refused, and with no key learned
// there is no fallback.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "integration/host_test_util.hpp"
#include "lan/lan_lab.hpp"
#include "netlab/netns.hpp"
#include "peerlink/lan.hpp"
#include "peerlink/xmpp.hpp"
#include "xmpp/prosody.hpp"

namespace peerlink::test {
namespace {

PeerId jid_id(const std::string& jid) {
  return *PeerId::parse("xmpp:" + jid);
}

// A Host in namespace `ns` with XMPP (the fixture's account `user`) and a LAN beacon announcing the
// account's JID; or the beacon alone (`user` empty) announcing `claims`.
struct DualNode {
  std::shared_ptr<XmppSignaling> xmpp;
  std::shared_ptr<LanBeacon> beacon;
  std::unique_ptr<Host> host;
  std::unique_ptr<EventRecorder> events;

  DualNode(const std::string& ns, const ProsodyServer* server, const std::string& user,
           std::vector<PeerId> claims = {}, std::map<PeerId, PublicKey> known = {}) {
    netlab::NetnsScope scope(ns);
    HostConfig config = test_config();
    config.known_keys = std::move(known);
    LanOptions lan;
    lan.identity = config.identity;
    lan.service = "fallback";
    lan.responder = LanResponder::kOwn;  // never a system avahi-daemon outside the namespaces
    lan.display_name = user.empty() ? "claimant" : user;
    lan.aliases = std::move(claims);
    if (server && !user.empty()) {
      xmpp = std::make_shared<XmppSignaling>(server->client(user));
      config.signaling.push_back(xmpp);
      lan.aliases.push_back(jid_id(server->jid(user)));
    }
    beacon = std::make_shared<LanBeacon>(lan);
    config.signaling.push_back(beacon);
    host = std::make_unique<Host>(config);
    events = std::make_unique<EventRecorder>(*host);
    EXPECT_TRUE(host->listen_p2p());
  }
};

// The outcome of a connect: connected (info) or closed (info), whichever came.
std::optional<ConnectionEvent> outcome(DualNode& from, ConnectionHandle c,
                                       std::initializer_list<Host*> hosts) {
  pump_until(
      hosts,
      [&] {
        return from.events->find(ConnectionEventKind::kConnected, c) ||
               from.events->find(ConnectionEventKind::kClosed, c);
      },
      15s);
  if (auto e = from.events->find(ConnectionEventKind::kConnected, c)) return e;
  return from.events->find(ConnectionEventKind::kClosed, c);
}

TEST(LanFallbackLab, XmppDown_ConnectGoesOnOverTheLanToTheKeyLearned_OthersRefused) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  if (!have_prosody(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string alice_ns = lab.add_host({lan}), bob_ns = lab.add_host({lan}),
                    server_ns = lab.add_host({lan});
  const std::string mallory_ns = lab.add_host({lan});
  ProsodyOptions po;
  po.netns = server_ns;
  po.ip = lab.ipv4(server_ns);
  po.contacts = {"alice", "bob", "carol"};
  ProsodyServer server(po);
  server.start();
  const PeerId bob_jid = jid_id(server.jid("bob")), carol_jid = jid_id(server.jid("carol"));

  DualNode alice(alice_ns, &server, "alice"), bob(bob_ns, &server, "bob");
  ASSERT_TRUE(alice.xmpp->wait_online(10s));
  ASSERT_TRUE(bob.xmpp->wait_online(10s));
  ASSERT_TRUE(pump_until({alice.host.get()}, [&] { return !alice.xmpp->contacts().empty(); }));

  // 1. Over XMPP: alice learns bob's key under his JID.
  ConnectionHandle first = alice.host->connect(bob_jid).value();
  std::optional<ConnectionEvent> e = outcome(alice, first, {alice.host.get(), bob.host.get()});
  ASSERT_TRUE(e && e->kind == ConnectionEventKind::kConnected) << (e ? e->info.end_debug : "nothing");
  EXPECT_EQ(e->info.remote_peer_exact.scheme(), "xmpp");
  const std::map<PeerId, PublicKey> learned = alice.host->known_keys();
  ASSERT_EQ(learned.count(bob_jid), 1u);
  EXPECT_EQ(learned.at(bob_jid), bob.host->identity().public_key());
  alice.host->close(first);

  // 2. Prosody stops. A connect to bob's JID finds XMPP down and goes on over the LAN, to bob's key.
  server.stop();
  ASSERT_TRUE(pump_until({alice.host.get()}, [&] {
    return alice.xmpp->status().state == XmppState::kReconnecting &&
           alice.beacon->peer(bob.beacon->local_peer());
  }));
  const auto t0 = std::chrono::steady_clock::now();
  ConnectionHandle c = alice.host->connect(bob_jid).value();
  e = outcome(alice, c, {alice.host.get(), bob.host.get()});
  ASSERT_TRUE(e && e->kind == ConnectionEventKind::kConnected) << (e ? e->info.end_debug : "nothing");
  std::printf("[ figures  ] XMPP down: connect to %s went on over the LAN, connected after %.0f ms\n",
              bob_jid.str().c_str(),
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  const ConnectionInfo info = *alice.host->connection_info(c);
  EXPECT_EQ(info.remote_peer, bob_jid);
  EXPECT_EQ(info.remote_peer_exact, bob.beacon->local_peer());
  EXPECT_EQ(info.remote_key, bob.host->identity().public_key());
  EXPECT_TRUE(info.remote_key_proven);
  // bob's side of it: his second connection (the first, over XMPP, was closed).
  ASSERT_TRUE(pump_until({alice.host.get(), bob.host.get()},
                         [&] { return bob.events->count(ConnectionEventKind::kConnected) >= 2; }));
  ConnectionHandle at_bob = 0;
  for (const ConnectionEvent& ev : bob.events->events())
    if (ev.kind == ConnectionEventKind::kConnected) at_bob = ev.info.handle;
  ASSERT_NE(at_bob, 0u);
  EXPECT_TRUE(transfer(*alice.host, c, *bob.host, at_bob, 16, 64 << 10));

  // 3. Mallory on the LAN also claims bob's JID, and carol's: alice still reaches the real bob (the key
  // decides), and a Host that learned another key for bob is refused with the reason.
  DualNode mallory(mallory_ns, nullptr, "", {bob_jid, carol_jid});
  ASSERT_TRUE(pump_until({alice.host.get()},
                         [&] { return alice.beacon->peer(mallory.beacon->local_peer()).has_value(); }));
  alice.host->close(c);
  c = alice.host->connect(bob_jid).value();
  e = outcome(alice, c, {alice.host.get(), bob.host.get()});
  ASSERT_TRUE(e && e->kind == ConnectionEventKind::kConnected) << (e ? e->info.end_debug : "nothing");
  EXPECT_EQ(alice.host->connection_info(c)->remote_peer_exact, bob.beacon->local_peer());

  {
    DualNode alice2(alice_ns, &server, "alice", {}, {{bob_jid, Identity::generate().public_key()}});
    ASSERT_TRUE(pump_until({alice2.host.get()}, [&] {
      return alice2.xmpp->status().state == XmppState::kReconnecting &&
             alice2.beacon->peer(bob.beacon->local_peer()) &&
             alice2.beacon->peer(mallory.beacon->local_peer());
    }));
    ConnectionHandle refused = alice2.host->connect(bob_jid).value();
    e = outcome(alice2, refused, {alice2.host.get()});
    ASSERT_TRUE(e && e->kind == ConnectionEventKind::kClosed);
    EXPECT_EQ(e->info.end_reason, uint32_t(EndReason::kRemoteKeyMismatch)) << e->info.end_debug;
    EXPECT_NE(e->info.end_debug.find("does not hold the key learned for it"), std::string::npos)
        << e->info.end_debug;
    EXPECT_EQ(alice2.beacon->counters().blobs_sent, 0u);  // refused before anything went over the LAN

    // No key learned for carol: no fallback, unreachable as without one (mallory is not asked).
    const uint64_t mallory_blobs = mallory.beacon->counters().blobs_received;
    ConnectionHandle no_key = alice2.host->connect(carol_jid).value();
    e = outcome(alice2, no_key, {alice2.host.get()});
    ASSERT_TRUE(e && e->kind == ConnectionEventKind::kClosed);
    EXPECT_EQ(e->info.end_reason, uint32_t(EndReason::kMiscSignalingUnreachable)) << e->info.end_debug;
    EXPECT_EQ(mallory.beacon->counters().blobs_received, mallory_blobs);
  }
}

}  // namespace
}  // namespace peerlink::test
