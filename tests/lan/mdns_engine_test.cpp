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

// Attacks on records that verify, or on what the signature leaves out: a datagram from `ip`:`port`.
Datagram from_address(const char* ip, uint16_t port, std::vector<uint8_t> bytes) {
  Datagram d;
  in_addr x{};
  inet_pton(AF_INET, ip, &x);
  d.bytes = std::move(bytes);
  d.source = SocketAddress::ipv4(x, port);
  d.interface_index = kIf;
  d.hop_limit = 255;
  d.multicast = true;
  return d;
}

dns::Message parsed(const std::vector<uint8_t>& wire) {
  std::optional<dns::Message> m = dns::parse(wire.data(), wire.size());
  EXPECT_TRUE(m);
  return m ? *m : dns::Message{};
}

std::vector<uint8_t> wire_of(const dns::Message& m) {
  std::optional<std::vector<uint8_t>> w = dns::serialize(m);
  EXPECT_TRUE(w);
  return w ? *w : std::vector<uint8_t>{};
}

dns::Record* find_record(dns::Message& m, dns::Type type) {
  for (auto* section : {&m.answers, &m.additionals})
    for (dns::Record& r : *section)
      if (r.kind() == type) return &r;
  return nullptr;
}

// What a peer publishing through avahi sends: version 2 TXT strings (signed by `id`, or `txt` as given)
// for instance `instance` on host `host`.local at `ip`, every record with `ttl`.
std::vector<uint8_t> version2(const Identity& id, uint64_t serial, uint32_t ttl,
                              const char* host = "avahi-host", const char* ip = "100.64.1.50",
                              std::vector<std::string> txt = {}) {
  const dns::Name service = *service_name("test");
  Announcement a;
  a.key = id.public_key();
  a.display_name = "v2";
  a.port = 40000;
  a.serial = serial;
  if (txt.empty()) txt = *portable_txt(service, a, id.private_key(), {});
  dns::Name instance = service;
  instance.insert(instance.begin(), instance_name(a));
  dns::Message m;
  m.response = true;
  dns::Record ptr;
  ptr.name = service;
  ptr.type = uint16_t(dns::Type::kPtr);
  ptr.ttl = ttl;
  ptr.target = instance;
  m.answers.push_back(ptr);
  dns::Record srv;
  srv.name = instance;
  srv.type = uint16_t(dns::Type::kSrv);
  srv.ttl = ttl;
  srv.port = a.port;
  srv.target = {host, "local"};
  m.additionals.push_back(srv);
  dns::Record t = srv;
  t.type = uint16_t(dns::Type::kTxt);
  t.strings = txt;
  m.additionals.push_back(t);
  dns::Record addr;
  addr.name = {host, "local"};
  addr.type = uint16_t(dns::Type::kA);
  addr.ttl = ttl;
  inet_pton(AF_INET, ip, addr.address.data());
  m.additionals.push_back(addr);
  return wire_of(m);
}

TEST(MdnsEngine, Version2Goodbye_MustVerify_TakenOnlyAtTheNewestSerial_NeverLocksThePeerOut) {
  Lan lan;
  Node& a = lan.add("a");
  const Identity c = Identity::generate();  // a peer publishing through avahi (version 2)
  a.engine->receive(from_address("100.64.1.50", kMdnsPort, version2(c, 2000, 120)), lan.now);
  ASSERT_EQ(a.engine->peers().count(c.public_key()), 1u);
  // Anyone's unsigned goodbye naming c's key, with a serial far ahead: refused (it was taken as it came, and
  // its serial made every later record of c's a replay).
  const std::string key(c.public_key().begin(), c.public_key().end());
  a.engine->receive(from_address("100.64.1.66", kMdnsPort,
                                 version2(c, 0, 0, "evil", "100.64.1.66",
                                          {"v=2", "k=" + key, "q=9999999999999999999", "n=v2"})),
                    lan.now);
  EXPECT_EQ(a.engine->peers().count(c.public_key()), 1u);
  EXPECT_EQ(a.engine->counters().bad_signature, 1u);
  // c's genuine records of an older serial, replayed as a goodbye: a replay.
  a.engine->receive(from_address("100.64.1.66", kMdnsPort, version2(c, 1500, 0)), lan.now);
  EXPECT_EQ(a.engine->peers().count(c.public_key()), 1u);
  EXPECT_EQ(a.engine->counters().replayed, 1u);
  // The goodbye of the serial known (avahi's removal; a replayed copy is the same bytes) ends the sighting
  // ...
  a.engine->receive(from_address("100.64.1.50", kMdnsPort, version2(c, 2000, 0)), lan.now);
  EXPECT_EQ(a.engine->peers().count(c.public_key()), 0u);
  // ... and only until c is heard again.
  a.engine->receive(from_address("100.64.1.50", kMdnsPort, version2(c, 2000, 120)), lan.now);
  EXPECT_EQ(a.engine->peers().count(c.public_key()), 1u);
}

TEST(MdnsEngine, ReplayedRecordsWithOtherTtls_NeitherLoseNorShortenThePeer) {
  Lan lan;
  Node& a = lan.add("a");
  Node& b = lan.add("b");
  const std::vector<uint8_t> genuine = lan.captured.back();  // b's records, TTL 120
  const Clock::time_point expires = a.engine->peers().at(b.id.public_key()).interfaces[0].expires;
  // Not a goodbye (the TXT keeps a TTL), so the signature verifies; the SRV's TTL of 0 expired b at once.
  dns::Message m = parsed(genuine);
  m.answers[0].ttl = 0;
  for (dns::Record& r : m.additionals)
    r.ttl = r.kind() == dns::Type::kTxt ? 1 : 0;
  a.engine->receive(lan.from(b, wire_of(m), true), lan.now);
  EXPECT_EQ(a.engine->peers().at(b.id.public_key()).interfaces[0].expires, expires);
  b.ticks = false;  // b announces nothing more by itself
  lan.advance(2s);
  EXPECT_EQ(Lan::count(a, PeerEvent::kLost), 0u);
  // A TTL of 2^32-1 s counts as the longest a beacon announces (4500 s), not 136 years.
  for (dns::Record& r : m.additionals)
    r.ttl = 0xffffffffu;
  m.answers[0].ttl = 0xffffffffu;
  a.engine->receive(lan.from(b, wire_of(m), true), lan.now);
  EXPECT_EQ(a.engine->peers().at(b.id.public_key()).interfaces[0].expires, lan.now + 4500s);
}

TEST(MdnsEngine, Version1RecordsDowngradedToVersion2_DoNotMoveTheAddresses) {
  Lan lan;
  Node& a = lan.add("a");
  Node& b = lan.add("b");
  // b's own records carry the version 2 signature too ("p"). Made into version 2 ones, that signature
  // verifies, and version 2 leaves the host and addresses unsigned: they would point b's rendezvous at
  // anyone.
  dns::Message m = parsed(lan.captured.back());
  dns::Record* txt = find_record(m, dns::Type::kTxt);
  ASSERT_TRUE(txt);
  std::vector<std::string> strings;
  for (const std::string& x : txt->strings) {
    if (x == "v=1")
      strings.push_back("v=2");
    else if (x.rfind("p=", 0) == 0)
      strings.push_back("s=" + x.substr(2));
    else if (x.rfind("s=", 0) != 0)
      strings.push_back(x);
  }
  txt->strings = strings;
  find_record(m, dns::Type::kSrv)->target = {"evil", "local"};
  dns::Record* addr = find_record(m, dns::Type::kA);
  addr->name = {"evil", "local"};
  inet_pton(AF_INET, "100.64.1.66", addr->address.data());
  a.engine->receive(from_address("100.64.1.66", kMdnsPort, wire_of(m)), lan.now);
  EXPECT_EQ(a.engine->counters().replayed, 1u);
  EXPECT_EQ(a.engine->peers().at(b.id.public_key()).interfaces[0].ipv4[0].s_addr, b.address.s_addr);
}

TEST(MdnsEngine, OneDatagram_EachInstanceCheckedOnce_AtMostEightInstances) {
  Lan lan;
  Node& a = lan.add("a");
  const Identity c = Identity::generate();
  dns::Message m = parsed(version2(c, 2000, 120));
  find_record(m, dns::Type::kTxt)->strings.back()[5] ^= 1;  // a bad signature
  for (int i = 0; i < 100; ++i)
    m.answers.push_back(m.answers[0]);  // the PTR, again and again
  a.engine->receive(from_address("100.64.1.66", kMdnsPort, wire_of(m)), lan.now);
  EXPECT_EQ(a.engine->counters().bad_signature, 1u);
  // Ten instances of ten keys: eight are read.
  dns::Message many;
  many.response = true;
  for (int i = 0; i < 10; ++i) {
    const dns::Message one = parsed(version2(Identity::generate(), 2000, 120, "h", "100.64.1.66"));
    many.answers.insert(many.answers.end(), one.answers.begin(), one.answers.end());
    many.additionals.insert(many.additionals.end(), one.additionals.begin(), one.additionals.end() - 1);
  }
  many.additionals.push_back(parsed(version2(c, 2000, 120, "h", "100.64.1.66")).additionals.back());
  a.engine->receive(from_address("100.64.1.66", kMdnsPort, wire_of(many)), lan.now);
  EXPECT_EQ(a.engine->peers().size(), kMaxInstancesPerMessage);
}

TEST(MdnsEngine, TheSourceBudgetIsPerAddress_OtherPortsShareIt) {
  Lan lan;
  Node& a = lan.add("a");
  const std::vector<uint8_t> garbage_record =
      version2(Identity::generate(), 1, 120, "h", "100.64.1.66", {"v=2", "k=short"});
  for (uint16_t port = 1000; port < 1200; ++port)
    a.engine->receive(from_address("100.64.1.66", port, garbage_record), lan.now);
  EXPECT_GE(a.engine->counters().source_rate_limited, 200u - uint64_t(kSourceBurst));
  // Another address has its own.
  a.engine->receive(from_address("100.64.1.67", 1000, garbage_record), lan.now);
  EXPECT_EQ(a.engine->counters().bad_records, uint64_t(kSourceBurst) + 1);
}

TEST(MdnsEngine, DisplayNameWithControlCharacters_Malformed) {
  Lan lan;
  Node& a = lan.add("a");
  const Identity c = Identity::generate();
  Announcement an;
  an.key = c.public_key();
  an.display_name = "\x1b[2Jhi";  // a terminal escape: clears the screen of whoever prints the name
  an.port = 40000;
  an.serial = 2000;
  std::vector<std::string> txt = *portable_txt(*service_name("test"), an, c.private_key(), {});
  a.engine->receive(from_address("100.64.1.66", kMdnsPort, version2(c, 2000, 120, "h", "100.64.1.66", txt)),
                    lan.now);
  EXPECT_TRUE(a.engine->peers().empty());
  EXPECT_EQ(a.engine->counters().bad_records, 1u);
}

TEST(SourceBudget, AFullTableForgetsRefilledBucketsFirst_NotOneStillSpent) {
  SourceBudget budget(1, 2, 2);  // 1 a second, bursts of 2, 2 sources
  const auto t = std::chrono::steady_clock::now();
  EXPECT_TRUE(budget.take("b", t - 10s));  // b: refilled by t
  EXPECT_TRUE(budget.take("a", t));
  EXPECT_TRUE(budget.take("a", t));
  EXPECT_FALSE(budget.take("a", t));  // a: spent
  EXPECT_TRUE(budget.take("c", t));   // the table is full: b goes, not a
  EXPECT_FALSE(budget.take("a", t));  // (the table started over before: a had a new burst)
  // Nothing refilled and full: it starts over, as before.
  EXPECT_TRUE(budget.take("d", t));
  EXPECT_TRUE(budget.take("a", t));
}

}  // namespace
}  // namespace peerlink::lan
