// Peers connect through a real Prosody (started by the fixture on the loopback): bare and full JIDs,
// resources of one account, symmetric connects, peers that cannot be reached.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <thread>
#include <tuple>

#include "xmpp/xmpp_test_util.hpp"

namespace peerlink::test {
namespace {

TEST(XmppConnect, TwoPeersThroughProsodyByBareJids_20MBExactOverADirectPath) {
  XMPP_REQUIRE_PROSODY();
  ProsodyServer server;
  server.start();
  XmppPeer alice(server.client("alice")), bob(server.client("bob"));
  ASSERT_TRUE(online_and_listening({&alice, &bob}));
  ConnectionHandle ca, cb;
  ASSERT_TRUE(xmpp_connect(alice, bob, xmpp_id(server.jid("bob")), ca, cb));

  // Each side names the other by the bare JID it would connect to, and says which resource answered.
  const ConnectionInfo ia = *alice.host->connection_info(ca), ib = *bob.host->connection_info(cb);
  EXPECT_EQ(ia.remote_peer, xmpp_id(server.jid("bob")));
  EXPECT_EQ(ia.remote_peer_exact, bob.self());
  EXPECT_EQ(ib.remote_peer, xmpp_id(server.jid("alice")));
  EXPECT_EQ(ib.remote_peer_exact, alice.self());
  EXPECT_EQ(ia.remote_key, bob.host->identity().public_key());
  EXPECT_FALSE(ia.relayed);
  EXPECT_EQ(ia.route, RouteType::kHost);

  EXPECT_TRUE(transfer(*alice.host, ca, *bob.host, cb, 320, 64 << 10));  // 20 MiB
  EXPECT_TRUE(transfer(*bob.host, cb, *alice.host, ca, 16, 4096));
  const XmppCounters counters = alice.plugin->counters();
  EXPECT_GT(counters.blobs_sent, 0u);
  EXPECT_GT(counters.blobs_received, 0u);
  EXPECT_EQ(counters.invalid_stanzas, 0u);
  EXPECT_EQ(counters.unreachable_reports, 0u);
}

// Offline, unknown, not a contact, a resource that is not there: the connect ends at once with the
// reason (not after the connect timeout).
TEST(XmppConnect, OfflineUnknownStrangerMissingResource_FailFastWithTheReason) {
  XMPP_REQUIRE_PROSODY();
  ProsodyOptions po;
  po.contacts = {"alice", "bob"};
  po.strangers = {"dave"};
  ProsodyServer server(po);
  server.start();
  XmppPeer alice(server.client("alice"), std::chrono::seconds(30));
  ASSERT_TRUE(alice.online());
  struct Case {
    std::string jid;
    std::string expected;  // in the end debug text
  };
  const Case cases[] = {
      {server.jid("bob"), "is offline"},
      {"nobody@" + server.options().domain, "no such account"},
      {server.jid("dave"), "not a contact"},
      {server.jid("bob") + "/phone", "service-unavailable"},
      {server.jid("alice") + "/elsewhere", "service-unavailable"},
      {"bob@unknown.example", "no such account"},  // a domain this server cannot reach (s2s is off)
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.jid);
    const auto start = std::chrono::steady_clock::now();
    ConnectionHandle h = alice.host->connect(xmpp_id(c.jid)).value();
    std::optional<ConnectionEvent> closed =
        wait_closed({alice.host.get()}, *alice.events, h, std::chrono::seconds(10));
    ASSERT_TRUE(closed);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kMiscSignalingUnreachable))
        << closed->info.end_debug;
    EXPECT_NE(closed->info.end_debug.find(c.expected), std::string::npos) << closed->info.end_debug;
    EXPECT_LT(took, std::chrono::seconds(2));
    std::printf("%s: ended after %lld ms: %s\n", c.jid.c_str(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
                closed->info.end_debug.c_str());
  }
}

// A wrong password is a clear state, not a retry loop; connects fail at once saying why.
TEST(XmppConnect, WrongPassword_FailedStateNoRetriesConnectsFailAtOnce) {
  XMPP_REQUIRE_PROSODY();
  ProsodyServer server;
  server.start();
  XmppOptions o = server.client("alice");
  o.password = "not-the-password";
  std::vector<XmppStatus> seen;
  std::mutex m;
  o.on_status = [&](const XmppStatus& s) {
    std::lock_guard<std::mutex> lock(m);
    seen.push_back(s);
  };
  o.log_sink = [](LogLevel, const std::string&) {};
  XmppPeer alice(o);
  EXPECT_FALSE(alice.plugin->wait_online(std::chrono::seconds(10)));
  XmppStatus s = alice.plugin->status();
  EXPECT_EQ(s.state, XmppState::kFailed);
  EXPECT_EQ(s.failure, XmppFailure::kCredentials);
  EXPECT_NE(s.reason.find("refused the password"), std::string::npos) << s.reason;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(alice.plugin->status().attempts, 1u);
  {
    std::lock_guard<std::mutex> lock(m);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back().state, XmppState::kFailed);
  }
  ConnectionHandle h = alice.host->connect(xmpp_id(server.jid("bob"))).value();
  std::optional<ConnectionEvent> closed =
      wait_closed({alice.host.get()}, *alice.events, h, std::chrono::seconds(2));
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kMiscSignalingUnreachable));
  EXPECT_NE(closed->info.end_debug.find("not logged in"), std::string::npos) << closed->info.end_debug;
}

// SASL EXTERNAL: a client certificate naming the account (id-on-xmppAddr), signed by the CA the server
// trusts, logs in without a password; one from another CA is refused, a final credentials failure.
TEST(XmppConnect, ClientCertificateLogin_TrustedLogsInUntrustedIsACredentialsFailure) {
  XMPP_REQUIRE_PROSODY();
  if (access("/usr/lib/prosody/modules/mod_auth_ccert", R_OK) != 0)
    GTEST_SKIP() << "needs prosody-modules (mod_auth_ccert)";
  ProsodyOptions po;
  po.certificate_logins = true;
  ProsodyServer server(po);
  server.start();
  auto with_certificate = [&](const std::string& user, bool trusted) {
    XmppOptions o = server.client(user);
    o.password.clear();
    std::tie(o.client_cert_file, o.client_key_file) = server.client_certificate(user, trusted);
    o.log_sink = [](LogLevel, const std::string&) {};
    return o;
  };
  XmppPeer alice(with_certificate("alice", true)), bob(with_certificate("bob", true));
  ASSERT_TRUE(alice.online()) << server.log_tail();
  ASSERT_TRUE(bob.online());
  ASSERT_TRUE(bob.host->listen_p2p());
  ConnectionHandle ca, cb;
  ASSERT_TRUE(xmpp_connect(alice, bob, xmpp_id(server.jid("bob")), ca, cb));

  XmppPeer mallory(with_certificate("alice", false));
  EXPECT_FALSE(mallory.plugin->wait_online(std::chrono::seconds(10)));
  const XmppStatus s = mallory.plugin->status();
  EXPECT_EQ(s.state, XmppState::kFailed);
  EXPECT_EQ(s.failure, XmppFailure::kCredentials) << s.reason;
  EXPECT_NE(s.reason.find("client certificate"), std::string::npos) << s.reason;
}

// Two resources of one account connect to each other by full JID; a blob from a resource the application
// did not address (it connected to the bare JID) still reaches its connection.
TEST(XmppConnect, TwoResourcesOfOneAccountAndBareOrFullAddressing) {
  XMPP_REQUIRE_PROSODY();
  ProsodyServer server;
  server.start();
  XmppPeer laptop(server.client("alice", "laptop")), tablet(server.client("alice", "tablet"));
  XmppPeer bob(server.client("bob", "game"));
  ASSERT_TRUE(laptop.online());
  ASSERT_TRUE(tablet.online());
  ASSERT_TRUE(bob.online());
  for (XmppPeer* p : {&laptop, &tablet, &bob})
    ASSERT_TRUE(p->host->listen_p2p());
  // The laptop sees its own account's other login and its contact, not itself.
  ASSERT_TRUE(sees(*laptop.plugin, tablet.self()));
  ASSERT_TRUE(sees(*laptop.plugin, bob.self()));
  for (const PeerId& id : laptop.plugin->contacts())
    EXPECT_NE(id, laptop.self());

  ConnectionHandle a, b;
  ASSERT_TRUE(xmpp_connect(laptop, tablet, tablet.self(), a, b));
  EXPECT_EQ(laptop.host->connection_info(a)->remote_peer, tablet.self());
  EXPECT_EQ(tablet.host->connection_info(b)->remote_peer, laptop.self());  // not the (own) bare JID
  ASSERT_TRUE(transfer(*laptop.host, a, *tablet.host, b, 4, 1000));

  // bob addresses alice's laptop by full JID; the laptop's answers come back to that connection.
  ConnectionHandle c, d;
  ASSERT_TRUE(xmpp_connect(bob, laptop, laptop.self(), c, d));
  EXPECT_EQ(bob.host->connection_info(c)->remote_peer, laptop.self());
  EXPECT_EQ(laptop.host->connection_info(d)->remote_peer, xmpp_id(server.jid("bob")));
  EXPECT_EQ(laptop.host->connection_info(d)->remote_peer_exact, bob.self());
  ASSERT_TRUE(transfer(*bob.host, c, *laptop.host, d, 4, 1000));
}

// Both sides connect to each other's bare JID at the same moment: exactly one connection each round.
TEST(XmppConnect, SymmetricConnectBothBareJidsAtOnce_50Rounds_ExactlyOneConnection) {
  XMPP_REQUIRE_PROSODY();
  ProsodyServer server;
  server.start();
  XmppPeer alice(server.client("alice")), bob(server.client("bob"));
  ASSERT_TRUE(online_and_listening({&alice, &bob}));
  ConnectOptions sym;
  sym.symmetric = true;
  for (int round = 0; round < 50; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const size_t before_a = alice.events->count(ConnectionEventKind::kConnected);
    const size_t before_b = bob.events->count(ConnectionEventKind::kConnected);
    ConnectionHandle ca = kInvalidConnection, cb = kInvalidConnection;
    std::thread t(
        [&] { cb = bob.host->connect(xmpp_id(server.jid("alice")), sym).value_or(kInvalidConnection); });
    ca = alice.host->connect(xmpp_id(server.jid("bob")), sym).value_or(kInvalidConnection);
    t.join();
    ASSERT_NE(ca, kInvalidConnection);
    ASSERT_NE(cb, kInvalidConnection);
    ASSERT_TRUE(pump_until({alice.host.get(), bob.host.get()}, [&] {
      return alice.events->find(ConnectionEventKind::kConnected, ca) &&
             bob.events->find(ConnectionEventKind::kConnected, cb);
    })) << "not connected";
    pump_until(
        {alice.host.get(), bob.host.get()}, [] { return false; }, std::chrono::milliseconds(100));
    EXPECT_EQ(alice.host->connections().size(), 1u);
    EXPECT_EQ(bob.host->connections().size(), 1u);
    EXPECT_EQ(alice.events->count(ConnectionEventKind::kConnected), before_a + 1);
    EXPECT_EQ(bob.events->count(ConnectionEventKind::kConnected), before_b + 1);
    ASSERT_EQ(alice.host->send(ca, "x", 1), SendResult::kOk);
    EXPECT_EQ(receive_n(*bob.host, cb, 1).size(), 1u);
    // Close both ends before the next round.
    alice.host->close(ca, CloseMode::kNow, 0, "next round");
    ASSERT_TRUE(wait_closed({alice.host.get(), bob.host.get()}, *bob.events, cb));
    bob.host->close(cb);
    alice.host->close(ca);
    ASSERT_TRUE(pump_until({alice.host.get(), bob.host.get()}, [&] {
      return alice.host->connections().empty() && bob.host->connections().empty();
    }));
  }
  EXPECT_EQ(alice.plugin->counters().invalid_stanzas, 0u);
}

}  // namespace
}  // namespace peerlink::test
