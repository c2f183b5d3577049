// What other XMPP entities see of the plugin, and what it does with hostile stanzas.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "xmpp/xmpp_test_util.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;

constexpr char kSignal[] = "urn:x-peerlink:signaling:1";

// bob also runs a normal chat client (resource "phone", priority 5, carbons on). Connections to and from
// bob's game resource leave no trace there: no signaling stanza, no message (so no carbon), nothing in
// bob's message archive.
TEST(XmppPrivacy, AnotherResourceOfTheAccountSeesNoSignalingNoMessagesNoArchive) {
  XMPP_REQUIRE_PROSODY();
  ProsodyServer server;
  server.start();
  RawClient phone(server, "bob", "phone", 5);
  ASSERT_TRUE(phone.wait_online());
  phone.send("<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
  ASSERT_TRUE(phone.wait_for("id=\"carbons\""));

  XmppPeer alice(server.client("alice")), bob(server.client("bob", "game"));
  ASSERT_TRUE(online_and_listening({&alice, &bob}));
  ConnectionHandle ca, cb;
  ASSERT_TRUE(xmpp_connect(alice, bob, xmpp_id(server.jid("bob")), ca, cb));
  // alice's bare JID reached bob's game resource (the one with the feature), not the phone of higher
  // priority.
  EXPECT_EQ(alice.host->connection_info(ca)->remote_peer_exact, bob.self());
  EXPECT_TRUE(transfer(*alice.host, ca, *bob.host, cb, 4, 1000));
  ConnectionHandle cb2, ca2;
  ASSERT_TRUE(xmpp_connect(bob, alice, xmpp_id(server.jid("alice")), cb2, ca2));
  EXPECT_GT(bob.plugin->counters().blobs_received, 0u);

  phone.send("<iq type='set' id='mam'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>");
  ASSERT_TRUE(phone.wait_for("id=\"mam\""));
  EXPECT_EQ(phone.count_received(kSignal), 0u);
  EXPECT_EQ(phone.count_received("<message"), 0u);
  EXPECT_EQ(phone.count_received("queryid=\"q1\""), 0u);  // no archived message came back
  size_t seen = 0;
  for (const std::string& s : phone.received())
    seen += s.find("peerlink") != std::string::npos ? 1 : 0;
  std::printf("the phone received %zu stanzas, %zu mentioning peerlink (presence caps, disco#info)\n",
              phone.received().size(), seen);
}

// A stranger sends the plugin every kind of junk: it is refused, counted and rate-limited; the plugin stays
// online and a real connection works afterwards.
// A Prosody where mallory is no one's contact, and mallory logged in as a raw client that answers nothing.
struct WithMallory {
  static ProsodyOptions options() {
    ProsodyOptions po;
    po.strangers = {"mallory"};
    return po;
  }
  ProsodyServer server{options()};
  std::unique_ptr<RawClient> mallory;
  ::testing::AssertionResult start() {
    server.start();
    mallory = std::make_unique<RawClient>(server, "mallory", "x", 0, false, false);
    if (mallory->wait_online()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "mallory is not online";
  }
};

TEST(XmppHostile, BadBase64OversizedUnknownIqsFloodsRoster_RefusedCountedStillWorks) {
  XMPP_REQUIRE_PROSODY();
  WithMallory lab;
  ASSERT_TRUE(lab.start());
  ProsodyServer& server = lab.server;
  RawClient& mallory = *lab.mallory;
  XmppPeer alice(server.client("alice")), bob(server.client("bob"));
  ASSERT_TRUE(alice.online());
  ASSERT_TRUE(bob.online());
  const std::string to = alice.self().str().substr(5);  // alice's full JID
  auto iq = [&](const std::string& id, const std::string& type, const std::string& body) {
    return "<iq type='" + type + "' id='" + id + "' to='" + to + "'>" + body + "</iq>";
  };
  const std::string sig = std::string("<signal xmlns='") + kSignal + "'>";
  mallory.send(iq("b64", "set", sig + "!!notbase64!!</signal>"));
  mallory.send(iq("big", "set", sig + std::string(4000, 'A') + "</signal>"));
  mallory.send(iq("empty", "set", sig + "</signal>"));
  mallory.send(iq("unknown", "get", "<query xmlns='urn:example:nothing'/>"));
  mallory.send(
      iq("roster", "set", "<query xmlns='jabber:iq:roster'><item jid='mallory@peerlink.test'/></query>"));
  mallory.send(iq("ping", "get", "<ping xmlns='urn:xmpp:ping'/>"));
  mallory.send(iq("disco", "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"));
  mallory.send("<iq type='set' to='" + to + "'>" + sig + "AAAA</signal></iq>");  // no id
  mallory.send("<message to='" + to + "'><body>hello</body></message>");
  // A flood of well-formed signaling IQs carrying junk blobs (the Host drops and counts them).
  std::string flood;
  for (int i = 0; i < 400; ++i)
    flood += iq("f" + std::to_string(i), "set", sig + "AAECAwQFBgcICQ==</signal>");
  mallory.send(flood);
  // Once mallory's rate has recovered, a ping is answered (after the flood was handled: in order).
  std::this_thread::sleep_for(1500ms);
  mallory.send(iq("last", "get", "<ping xmlns='urn:xmpp:ping'/>"));
  ASSERT_TRUE(mallory.wait_for("id=\"last\""));

  auto answer = [&](const std::string& id) {
    for (const std::string& s : mallory.received())
      if (s.find("id=\"" + id + "\"") != std::string::npos) return s;
    return std::string();
  };
  EXPECT_NE(answer("b64").find("bad-request"), std::string::npos) << answer("b64");
  EXPECT_NE(answer("big").find("bad-request"), std::string::npos) << answer("big");
  EXPECT_NE(answer("empty").find("bad-request"), std::string::npos) << answer("empty");
  EXPECT_NE(answer("unknown").find("service-unavailable"), std::string::npos) << answer("unknown");
  EXPECT_NE(answer("roster").find("service-unavailable"), std::string::npos) << answer("roster");
  EXPECT_NE(answer("ping").find("type=\"result\""), std::string::npos) << answer("ping");
  EXPECT_NE(answer("disco").find(kSignal), std::string::npos) << answer("disco");
  EXPECT_NE(answer("f0").find("type=\"result\""), std::string::npos);
  // Which of the flood are refused depends on how fast the plugin works through it (its bucket refills at
  // 20 a second, and a sanitizer build is slow), so count the refusals rather than name one. The error
  // replies have a budget of their own (200 at once), so not every refusal is answered.
  size_t constrained = 0;
  for (const std::string& s : mallory.received())
    constrained +=
        s.find("id=\"f") != std::string::npos && s.find("resource-constraint") != std::string::npos;
  EXPECT_GE(constrained, 150u);

  const XmppCounters k = alice.plugin->counters();
  EXPECT_EQ(k.invalid_stanzas, 3u);
  EXPECT_EQ(k.unknown_iqs_refused, 2u);
  EXPECT_EQ(k.blobs_received + k.requests_limited, 400u);  // each one of the flood taken or refused
  EXPECT_GT(k.requests_limited, 300u);
  EXPECT_GE(k.pings_answered, 1u);
  EXPECT_GT(alice.host->counters().signaling_invalid, 0u);
  std::printf("flood of 400: %llu blobs taken, %llu refused or dropped\n",
              static_cast<unsigned long long>(k.blobs_received),
              static_cast<unsigned long long>(k.requests_limited));

  // Still online, and a real connection works.
  EXPECT_EQ(alice.plugin->status().state, XmppState::kOnline);
  ASSERT_TRUE(alice.host->listen_p2p());
  ConnectionHandle cb, ca;
  ASSERT_TRUE(xmpp_connect(bob, alice, xmpp_id(server.jid("alice")), cb, ca));
  EXPECT_TRUE(transfer(*bob.host, cb, *alice.host, ca, 4, 1000));
}

// An error with the id of one of alice's IQs (here her disco#info to the resource she connects to), from
// anyone but the entity asked, is not taken for its answer: it ended alice's setup at once ("none of its
// resources runs peerlink"), and whoever learns or guesses an id could do that to any setup. From the
// entity asked, it is taken.
TEST(XmppHostile, AnswersFromAnyoneButTheEntityAsked_Ignored) {
  XMPP_REQUIRE_PROSODY();
  WithMallory lab;
  ASSERT_TRUE(lab.start());
  // Logged in after mallory: libstrophe's SHA-1 state is static, and two raw clients logging in at once
  // (outside the plugins' login lock) can spoil each other's SCRAM proof.
  RawClient bob(lab.server, "bob", "raw", 0, true, false);  // answers no IQ by itself
  ASSERT_TRUE(bob.wait_online());
  XmppPeer alice(lab.server.client("alice"), 30s);
  ASSERT_TRUE(alice.online());
  const ConnectionHandle c = alice.host->connect(xmpp_id(lab.server.jid("bob"))).value_or(kInvalidConnection);
  ASSERT_NE(c, kInvalidConnection);
  const std::string disco = "http://jabber.org/protocol/disco#info";
  ASSERT_TRUE(bob.wait_for(disco));
  std::string id;
  for (const std::string& st : bob.received()) {
    if (st.find(disco) == std::string::npos || st.find("type=\"get\"") == std::string::npos) continue;
    const size_t at = st.find("id=\"");
    ASSERT_NE(at, std::string::npos) << st;
    id = st.substr(at + 4, st.find('"', at + 4) - at - 4);
  }
  ASSERT_FALSE(id.empty());
  const std::string error = "<iq type='error' id='" + id + "' to='" + alice.self().str().substr(5) +
                            "'><error type='cancel'><service-unavailable "
                            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
  lab.mallory->send(error);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (alice.plugin->counters().answers_refused == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(alice.plugin->counters().answers_refused, 1u);
  pump_until(
      {alice.host.get()}, [] { return false; }, 300ms);
  EXPECT_FALSE(alice.events->find(ConnectionEventKind::kClosed, c)) << "mallory's error ended the setup";
  bob.send(error);  // from the resource asked: it lacks the feature, the setup ends at once
  auto closed = wait_closed({alice.host.get()}, *alice.events, c, 10s);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kMiscSignalingUnreachable))
      << closed->info.end_debug;
}

}  // namespace
}  // namespace peerlink::test
