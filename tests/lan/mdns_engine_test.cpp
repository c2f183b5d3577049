// The LAN beacon's querier and responder on a simulated LAN (deterministic time, no sockets): discovery at
// start, late joiners, goodbye and expiry, refresh rate, unicast answers within the query's size, rate
// limits, and hostile datagrams (off-link, garbage, forged, replayed) dropped and counted.
#include "mdns_engine.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "peerlink/identity.hpp"

namespace peerlink::lan {
namespace {

using namespace std::chrono_literals;
using Clock = MdnsEngine::Clock;
constexpr int kIf = 2;                // every node's interface index on the simulated LAN
constexpr uint16_t kOwnPort = 40000;  // every node's own port (queries, rendezvous)

struct Node {
  Identity id = Identity::generate();
  in_addr address{};
  std::unique_ptr<MdnsEngine> engine;
  std::vector<PeerEvent> events;
  size_t multicast_sent = 0;
  bool ticks = true;  // false: its timers never run (it answers, but never re-announces by itself)
};

// One LAN: multicast reaches every other node, unicast the node with that address; hop limit 255.
struct Lan {
  std::vector<std::unique_ptr<Node>> nodes;
  Clock::time_point now = Clock::now();
  std::vector<std::vector<uint8_t>> captured;  // every multicast datagram, for replays

  Node& add(const std::string& name, bool start = true) {
    auto n = std::make_unique<Node>();
    const std::string ip = "100.64.1." + std::to_string(10 + nodes.size());
    inet_pton(AF_INET, ip.c_str(), &n->address);
    EngineConfig c;
    c.service = *service_name("test");
    c.self.key = n->id.public_key();
    c.self.display_name = name;
    c.self.port = 40000;
    c.private_key = n->id.private_key();
    c.ipv6 = false;
    c.first_serial = 1000;
    n->engine = std::make_unique<MdnsEngine>(c);
    nodes.push_back(std::move(n));
    if (start) nodes.back()->engine->interface_up(kIf, {nodes.back()->address}, {}, now);
    settle();
    return *nodes.back();
  }
  // From port 5353, or from the node's own port (its first query, as the beacon sends it).
  Datagram from(const Node& n, std::vector<uint8_t> bytes, bool multicast, bool own_port = false) const {
    Datagram d;
    d.bytes = std::move(bytes);
    d.source = SocketAddress::ipv4(n.address, own_port ? kOwnPort : kMdnsPort);
    d.interface_index = kIf;
    d.hop_limit = 255;
    d.multicast = multicast;
    return d;
  }
  // Delivers until nobody has anything more to send.
  void settle() {
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& n : nodes) {
        if (!n->engine) continue;
        for (Outgoing& o : n->engine->take_outgoing()) {
          busy = true;
          if (o.multicast) {
            ++n->multicast_sent;
            captured.push_back(o.bytes);
          }
          for (auto& m : nodes) {
            if (m == n || !m->engine) continue;
            if (!o.multicast &&
                reinterpret_cast<const sockaddr_in&>(o.to.storage).sin_addr.s_addr != m->address.s_addr)
              continue;
            m->engine->receive(from(*n, o.bytes, o.multicast, o.query), now);
          }
        }
      }
      for (auto& n : nodes)
        if (n->engine)
          for (PeerEvent& e : n->engine->take_events())
            n->events.push_back(std::move(e));
    }
  }
  void advance(std::chrono::milliseconds by, std::chrono::milliseconds step = 100ms) {
    const Clock::time_point end = now + by;
    while (now < end) {
      now = std::min(end, now + step);
      for (auto& n : nodes)
        if (n->engine && n->ticks) n->engine->tick(now);
      settle();
    }
  }
  static size_t count(const Node& n, PeerEvent::Kind kind) {
    size_t c = 0;
    for (const PeerEvent& e : n.events)
      c += e.kind == kind;
    return c;
  }
};

TEST(MdnsEngine, ThreePeersDiscoverEachOtherAtOnce_LateJoinerSeesAndIsSeen) {
  Lan lan;
  Node& a = lan.add("a");
  Node& b = lan.add("b");
  Node& c = lan.add("c");
  // No time has passed: the queries at start, with their records, were enough.
  for (Node* n : {&a, &b, &c}) {
    EXPECT_EQ(n->engine->peers().size(), 2u);
    EXPECT_EQ(Lan::count(*n, PeerEvent::kFound), 2u);
  }
  const DiscoveredPeer& seen = a.engine->peers().at(b.id.public_key());
  EXPECT_EQ(seen.announcement.display_name, "b");
  ASSERT_EQ(seen.interfaces.size(), 1u);
  EXPECT_EQ(seen.interfaces[0].interface_index, kIf);
  ASSERT_EQ(seen.interfaces[0].ipv4.size(), 1u);
  EXPECT_EQ(seen.interfaces[0].ipv4[0].s_addr, b.address.s_addr);
  lan.advance(30s);
  Node& late = lan.add("late");
  EXPECT_EQ(late.engine->peers().size(), 3u);
  for (Node* n : {&a, &b, &c})
    EXPECT_EQ(n->engine->peers().count(late.id.public_key()), 1u);
  // Nobody is found twice, nothing is lost while everyone runs for ten minutes.
  lan.advance(10min, 1s);
  for (Node* n : {&a, &b, &c, &late}) {
    EXPECT_EQ(n->engine->peers().size(), 3u);
    EXPECT_EQ(Lan::count(*n, PeerEvent::kLost), 0u);
    EXPECT_EQ(Lan::count(*n, PeerEvent::kFound), 3u);
  }
}

TEST(MdnsEngine, SteadyStateIsAtMostTwoMulticastsAMinutePerPeer) {
  Lan lan;
  for (const char* name : {"a", "b", "c"})
    lan.add(name);
  lan.advance(10s);
  std::vector<size_t> before;
  for (auto& n : lan.nodes)
    before.push_back(n->multicast_sent);
  lan.advance(30min, 1s);
  for (size_t i = 0; i < lan.nodes.size(); ++i) {
    const double per_minute = double(lan.nodes[i]->multicast_sent - before[i]) / 30.0;
    std::printf("[ figures  ] peer %zu: %.2f multicast datagrams a minute on its interface (IPv4 only)\n", i,
                per_minute);
    EXPECT_LE(per_minute, 2.0) << i;
    EXPECT_GT(per_minute, 0.0) << i;  // it does refresh
  }
}

TEST(MdnsEngine, GoodbyeLosesAtOnce_SilenceLosesWithinTheTtl_InterfaceDownLosesItsPeers) {
  Lan lan;
  Node& a = lan.add("a");
  Node& b = lan.add("b");
  Node& c = lan.add("c");
  b.engine->goodbye();
  lan.settle();
  EXPECT_EQ(a.engine->peers().count(b.id.public_key()), 0u);
  EXPECT_EQ(Lan::count(a, PeerEvent::kLost), 1u);
  b.engine.reset();
  // c is killed: no goodbye. a forgets it when its records expire (TTL 120 s), not before.
  lan.advance(5s);
  c.engine.reset();
  lan.advance(100s, 1s);
  EXPECT_EQ(a.engine->peers().count(c.id.public_key()), 1u);
  lan.advance(30s, 1s);
  EXPECT_EQ(a.engine->peers().count(c.id.public_key()), 0u);
  EXPECT_EQ(Lan::count(a, PeerEvent::kLost), 2u);

  Node& d = lan.add("d");
  ASSERT_EQ(a.engine->peers().size(), 1u);
  a.engine->interface_down(kIf);
  EXPECT_TRUE(a.engine->peers().empty());
  lan.settle();
  EXPECT_EQ(Lan::count(a, PeerEvent::kLost), 3u);  // b, c, and now d
  (void)d;
}

TEST(MdnsEngine, HostileDatagramsAreDroppedAndCounted) {
  Lan lan;
  Node& a = lan.add("a");
  Node& b = lan.add("b");
  const std::vector<uint8_t> old_record = lan.captured.back();  // b's records (serial 1000)
  // b's address changes: a newer serial. Replaying the old records is refused.
  in_addr moved{};
  inet_pton(AF_INET, "100.64.1.99", &moved);
  b.engine->interface_up(kIf, {moved}, {}, lan.now);
  lan.settle();
  EXPECT_EQ(a.engine->peers().at(b.id.public_key()).interfaces[0].ipv4[0].s_addr, moved.s_addr);
  a.engine->receive(lan.from(b, old_record, true), lan.now);
  EXPECT_EQ(a.engine->counters().replayed, 1u);
  EXPECT_EQ(a.engine->peers().at(b.id.public_key()).interfaces[0].ipv4[0].s_addr, moved.s_addr);
  // Off-link (hop limit below 255), garbage, a forged copy (one byte of the signed content changed).
  Datagram off = lan.from(b, old_record, true);
  off.hop_limit = 64;
  a.engine->receive(off, lan.now);
  EXPECT_EQ(a.engine->counters().off_link, 1u);
  a.engine->receive(lan.from(b, {1, 2, 3}, true), lan.now);
  EXPECT_EQ(a.engine->counters().malformed, 1u);
  std::vector<uint8_t> forged = lan.captured.back();
  forged[forged.size() - 1] ^= 1;  // the last A record's address
  a.engine->receive(lan.from(b, forged, true), lan.now);
  EXPECT_EQ(a.engine->counters().bad_signature, 1u);
  EXPECT_EQ(a.engine->peers().size(), 1u);
  // A flood from one source: beyond its budget, dropped unread and counted.
  const uint64_t read_before = a.engine->counters().bad_signature;
  for (int i = 0; i < 200; ++i)
    a.engine->receive(lan.from(b, forged, true), lan.now);
  EXPECT_GT(a.engine->counters().source_rate_limited, 100u);
  EXPECT_LE(a.engine->counters().bad_signature - read_before, 60u);
  lan.advance(5s);  // the budget comes back
  const uint64_t read_mid = a.engine->counters().bad_signature;
  a.engine->receive(lan.from(b, forged, true), lan.now);
  EXPECT_EQ(a.engine->counters().bad_signature, read_mid + 1);
  // A datagram on an interface the engine does not serve is ignored.
  Datagram elsewhere = lan.from(b, old_record, true);
  elsewhere.interface_index = kIf + 1;
  a.engine->receive(elsewhere, lan.now);
  EXPECT_EQ(a.engine->counters().replayed, 1u);
}

TEST(MdnsEngine, AnswersByUnicastWithinTheQuerySizeOnceASecondElseMulticastRateLimited) {
  Lan lan;
  Node& a = lan.add("a");
  Node& b = lan.add("b", /*start=*/false);
  // b's query without records (a bare 34-byte question): a's answer is larger, so it goes by multicast.
  dns::Message q;
  q.questions.push_back(
      dns::Question{*service_name("test"), static_cast<uint16_t>(dns::Type::kPtr), dns::kClassIn, true});
  const std::vector<uint8_t> bare = *dns::serialize(q);
  lan.advance(2s);
  const EngineCounters before = a.engine->counters();
  a.engine->receive(lan.from(b, bare, true), lan.now);
  EXPECT_EQ(a.engine->counters().queries_answered_multicast, before.queries_answered_multicast + 1);
  a.engine->receive(lan.from(b, bare, true), lan.now);  // again within a second: nothing
  EXPECT_EQ(a.engine->counters().answers_rate_limited, before.answers_rate_limited + 1);
  for (Outgoing& o : a.engine->take_outgoing())
    EXPECT_TRUE(o.multicast);
  // A query padded to the answer's size (as the engine's own queries are, with their records), from the
  // querier's own port: unicast, once a second per source. From port 5353 (which other responders on its
  // host may share, so a unicast answer might reach one of them instead): multicast.
  std::vector<uint8_t> big = bare;
  dns::Message padded = q;
  dns::Record filler;
  filler.name = dns::name_of("x.local");
  filler.type = static_cast<uint16_t>(dns::Type::kNsec);
  filler.raw.assign(600, 0);
  padded.additionals.push_back(filler);
  big = *dns::serialize(padded);
  lan.advance(2s);
  a.engine->receive(lan.from(b, big, true, /*own_port=*/true), lan.now);
  std::vector<Outgoing> out = a.engine->take_outgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].multicast);
  EXPECT_LE(out[0].bytes.size(), big.size());
  EXPECT_EQ(out[0].to.str(), "100.64.1.11:40000");
  a.engine->receive(lan.from(b, big, true, true), lan.now);
  out = a.engine->take_outgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].multicast);  // the source had its unicast answer this second
  lan.advance(2s);
  a.engine->receive(lan.from(b, big, true), lan.now);  // from port 5353
  out = a.engine->take_outgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].multicast);
  // Its own query, looped back by the kernel, is not answered.
  lan.advance(2s);
  a.engine->interface_up(kIf, {a.address}, {}, lan.now);  // unchanged: nothing new is sent
  EXPECT_TRUE(a.engine->take_outgoing().empty());
  std::vector<uint8_t> own_query;
  for (const std::vector<uint8_t>& c : lan.captured) {
    std::optional<dns::Message> m = dns::parse(c.data(), c.size());
    if (m && !m->response) own_query = c;  // the last query seen: b never started, so a's
  }
  ASSERT_FALSE(own_query.empty());
  a.engine->receive(lan.from(a, own_query, true), lan.now);
  EXPECT_TRUE(a.engine->take_outgoing().empty());
  // A query for another service gets nothing.
  dns::Message other;
  other.questions.push_back(
      dns::Question{*service_name("other"), static_cast<uint16_t>(dns::Type::kPtr), dns::kClassIn, true});
  lan.advance(2s);
  a.engine->receive(lan.from(b, *dns::serialize(other), true), lan.now);
  EXPECT_TRUE(a.engine->take_outgoing().empty());
}

// A peer that answers queries but never re-announces by itself (as a system responder publishing for
// a peer does) is asked for again before its records expire, and so is never lost.
TEST(MdnsEngine, PeerThatDoesNotReannounce_AskedForAgainBeforeItsTtl_NeverLost) {
  Lan lan;
  Node& a = lan.add("a");
  Node& b = lan.add("b");
  ASSERT_EQ(a.engine->peers().size(), 1u);
  b.ticks = false;
  const size_t before = a.multicast_sent;
  lan.advance(10min, 1s);
  EXPECT_EQ(Lan::count(a, PeerEvent::kLost), 0u);
  EXPECT_EQ(a.engine->peers().size(), 1u);
  // A question about every 102 s (85% of the 120 s TTL, answered at once) and a's own refreshes (every 96
  // s): still at most 2 multicast datagrams a minute.
  const size_t sent = a.multicast_sent - before;
  EXPECT_GE(sent, 10u);
  EXPECT_LE(sent, 20u);
}

TEST(MdnsEngine, NetworkKeyGroupsDoNotSeeEachOther) {
  Lan lan;
  Node& a = lan.add("a");
  Node& b = lan.add("b");
  EXPECT_EQ(a.engine->peers().size(), 1u);
  // A third node in a closed group: it and the others ignore each other, counting the records.
  auto n = std::make_unique<Node>();
  inet_pton(AF_INET, "100.64.1.50", &n->address);
  EngineConfig c;
  c.service = *service_name("test");
  c.self.key = n->id.public_key();
  c.private_key = n->id.private_key();
  c.network_key.assign(32, 5);
  c.ipv6 = false;
  n->engine = std::make_unique<MdnsEngine>(c);
  Node& closed = *n;
  lan.nodes.push_back(std::move(n));
  closed.engine->interface_up(kIf, {closed.address}, {}, lan.now);
  lan.settle();
  EXPECT_TRUE(closed.engine->peers().empty());
  EXPECT_GT(closed.engine->counters().wrong_network_key, 0u);
  EXPECT_EQ(a.engine->peers().size(), 1u);
  EXPECT_GT(a.engine->counters().wrong_network_key, 0u);
  (void)b;
}

}  // namespace
}  // namespace peerlink::lan
