// The LAN beacon as applications use it (include/peerlink/lan.hpp): Hosts in namespaces on LANs of the lab
// (lan_lab.hpp) with the beacon as their only signaling. Peers discover each other over IPv4 and over IPv6
// and connect with a PeerId from discovery (20 MB exact, host candidates); an interface plugged in or
// unplugged while running is followed and the Host's connections restart ICE; a network key keeps
// strangers out; forged records and hostile rendezvous datagrams are dropped and counted; a peer that
// leaves is lost at once, one killed within its TTL.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>

#include "beacon_records.hpp"
#include "integration/host_test_util.hpp"
#include "lan/lan_lab.hpp"
#include "lan_rendezvous.hpp"
#include "mdns_socket.hpp"
#include "netlab/netns.hpp"
#include "peerlink/lan.hpp"

namespace peerlink::test {
namespace {

// A Host with a LAN beacon as its signaling, made inside namespace `ns` (its threads and sockets live there).
struct LanNode {
  std::shared_ptr<LanBeacon> beacon;
  std::unique_ptr<Host> host;
  std::unique_ptr<EventRecorder> events;

  LanNode(const std::string& ns, LanOptions lan) {
    netlab::NetnsScope scope(ns);
    HostConfig config = test_config();
    lan.identity = config.identity;
    if (lan.service == "peerlink") lan.service = "labtest";
    lan.responder = LanResponder::kOwn;  // never a system avahi-daemon outside the namespaces
    beacon = std::make_shared<LanBeacon>(lan);
    config.signaling.push_back(beacon);
    host = std::make_unique<Host>(config);
    events = std::make_unique<EventRecorder>(*host);
    EXPECT_TRUE(host->listen_p2p());
  }
  PeerId id() const { return beacon->local_peer(); }
  bool sees(const LanNode& other) const { return beacon->peer(other.id()).has_value(); }
};

LanOptions family(bool v4) {
  LanOptions o;
  o.ipv4 = v4;
  o.ipv6 = !v4;
  return o;
}

// a connects to b by the PeerId discovery gave; both connected events, or a failure.
::testing::AssertionResult connect(LanNode& a, LanNode& b, ConnectionHandle* ca, ConnectionHandle* cb) {
  const size_t before = b.events->count(ConnectionEventKind::kConnected);
  Result<ConnectionHandle> c = a.host->connect(b.id());
  if (!c) return ::testing::AssertionFailure() << c.error().message;
  const bool up = pump_until(
      {a.host.get(), b.host.get()},
      [&] {
        return a.events->find(ConnectionEventKind::kConnected, *c) &&
               b.events->count(ConnectionEventKind::kConnected) > before;
      },
      15s);
  if (!up) {
    auto closed = a.events->find(ConnectionEventKind::kClosed, *c);
    return ::testing::AssertionFailure()
           << "not connected" << (closed ? ": " + closed->info.end_debug : std::string());
  }
  *ca = *c;
  for (const ConnectionEvent& e : b.events->events())  // b's newest connection
    if (e.kind == ConnectionEventKind::kConnected) *cb = e.info.handle;
  return ::testing::AssertionSuccess();
}

TEST(LanBeaconLab, ThreePeersDiscoverAndConnect_OverIpv4AndOverIpv6_20MBExact) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan}), h2 = lab.add_host({lan}), h3 = lab.add_host({lan});
  for (const bool v4 : {true, false}) {
    SCOPED_TRACE(v4 ? "IPv4 only" : "IPv6 only");
    LanOptions o = family(v4);
    o.display_name = "one";
    LanNode a(h1, o);
    o.display_name = "two";
    LanNode b(h2, o);
    o.display_name = "three";
    LanNode c(h3, o);
    ASSERT_TRUE(pump_until({a.host.get()}, [&] {
      return a.beacon->peers().size() == 2 && b.beacon->peers().size() == 2 && c.beacon->peers().size() == 2;
    }));
    // What a sees of b: its id, name, key, the link it was heard on and its addresses of that family.
    const LanPeer seen = *a.beacon->peer(b.id());
    EXPECT_EQ(seen.display_name, "two");
    EXPECT_EQ(seen.key, b.host->identity().public_key());
    EXPECT_EQ(seen.id.str(), "lan:" + b.host->identity().fingerprint());
    ASSERT_EQ(seen.links.size(), 1u);
    EXPECT_EQ(seen.links[0].interface, "eth0");
    ASSERT_FALSE(seen.links[0].addresses.empty());
    for (const Address& address : seen.links[0].addresses) {
      EXPECT_EQ(address.is_ipv4(), v4) << address.to_string();
      if (!v4) {
        EXPECT_EQ(address.scope_id(), uint32_t(LanLab::interface_index(h1)));
      }
    }
    EXPECT_NE(seen.port, 0);
    EXPECT_EQ(a.beacon->peers().front().display_name, "three");  // ordered by name
    EXPECT_EQ(a.beacon->interfaces(), std::vector<std::string>{"eth0"});
    // Events: found, once per peer.
    LanEvent e;
    int found = 0;
    while (a.beacon->next_event(e, 0ms))
      found += e.kind == LanEventKind::kFound ? 1 : 0;
    EXPECT_EQ(found, 2);

    ConnectionHandle ab = 0, ba = 0, ca = 0, ac = 0;
    ASSERT_TRUE(connect(a, b, &ab, &ba));
    ASSERT_TRUE(connect(c, a, &ca, &ac));
    const ConnectionInfo info = *a.host->connection_info(ab);
    EXPECT_EQ(info.route, RouteType::kHost) << to_string(info.route);
    EXPECT_FALSE(info.relayed);
    EXPECT_EQ(info.remote_key, b.host->identity().public_key());
    EXPECT_TRUE(info.remote_key_proven);
    EXPECT_EQ(a.events->find(ConnectionEventKind::kConnected, ab)->info.remote_peer, b.id());
    EXPECT_TRUE(transfer(*a.host, ab, *b.host, ba, 320, 64 << 10));  // 20 MB
    EXPECT_TRUE(transfer(*b.host, ba, *a.host, ab, 16, 4096));
    EXPECT_TRUE(transfer(*c.host, ca, *a.host, ac, 16, 4096));
    const LanCounters counters = a.beacon->counters();
    EXPECT_GT(counters.blobs_sent, 0u);
    EXPECT_GT(counters.blobs_received, 0u);
    EXPECT_EQ(counters.blobs_rejected, 0u);
    EXPECT_EQ(counters.bad_signature, 0u);
    EXPECT_EQ(counters.off_link, 0u);
  }
}

// A peer on another LAN is not reachable; one whose network key differs is invisible and unreachable; a
// connect to a name that is no LAN peer id ends at once.
TEST(LanBeaconLab, StrangersInvisible_UnknownPeersUnreachable) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan1 = lab.add_lan(), lan2 = lab.add_lan();
  const std::string h1 = lab.add_host({lan1}), h2 = lab.add_host({lan1}), h3 = lab.add_host({lan1});
  const std::string far = lab.add_host({lan2});
  LanOptions keyed;
  keyed.network_key = "the group's key, thirty-two bytes";
  LanNode a(h1, keyed), b(h2, keyed), far_node(far, keyed);
  LanOptions other = keyed;
  other.network_key = "another group's key, not the one";
  LanNode stranger(h3, other);
  ASSERT_TRUE(pump_until({a.host.get()}, [&] { return a.sees(b) && b.sees(a); }));
  ASSERT_TRUE(pump_until({a.host.get()}, [&] { return stranger.beacon->counters().wrong_network_key > 0; }));
  EXPECT_FALSE(a.sees(stranger));
  EXPECT_FALSE(stranger.sees(a));
  EXPECT_FALSE(a.sees(far_node));
  EXPECT_TRUE(pump_until({a.host.get()}, [&] { return a.beacon->counters().wrong_network_key > 0; }));
  ConnectionHandle ab = 0, ba = 0;
  EXPECT_TRUE(connect(a, b, &ab, &ba));  // the group connects

  for (auto [from, to] : {std::pair{&stranger, &a}, std::pair{&far_node, &a}}) {
    const auto t0 = std::chrono::steady_clock::now();
    ConnectionHandle c = from->host->connect(to->id()).value();
    std::optional<ConnectionEvent> closed = wait_closed({from->host.get()}, *from->events, c, 10s);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kMiscSignalingUnreachable))
        << closed->info.end_debug;
    EXPECT_NE(closed->info.end_debug.find("not seen on the LAN"), std::string::npos)
        << closed->info.end_debug;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  }
  ConnectionHandle c = a.host->connect(*PeerId::parse("lan:not-a-fingerprint")).value();
  std::optional<ConnectionEvent> closed = wait_closed({a.host.get()}, *a.events, c, 2s);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->info.end_reason, uint32_t(EndReason::kMiscSignalingUnreachable));
  // A LanBeacon given another identity than its Host's is refused when the Host starts.
  {
    netlab::NetnsScope scope(h1);
    HostConfig config = test_config();
    LanOptions lan;
    lan.identity = Identity::generate();
    config.signaling.push_back(std::make_shared<LanBeacon>(lan));
    Result<std::unique_ptr<Host>> host = Host::create(config);
    ASSERT_FALSE(host);
    EXPECT_EQ(host.error().code, ErrorCode::kInvalidConfig);
    EXPECT_NE(host.error().message.find("not the Host's identity"), std::string::npos)
        << host.error().message;
  }
}

// Garbage, forged, misaddressed and replayed datagrams at a beacon's rendezvous port are dropped and
// counted; the beacon and its connections go on.
TEST(LanBeaconLab, HostileRendezvousDatagrams_DroppedAndCounted) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan}), h2 = lab.add_host({lan}), h3 = lab.add_host({lan});
  LanNode a(h1, family(true)), b(h2, family(true));
  ASSERT_TRUE(pump_until({a.host.get()}, [&] { return b.sees(a); }));
  const uint16_t port = b.beacon->peer(a.id())->port;
  const PublicKey a_key = a.host->identity().public_key();
  {
    netlab::NetnsScope scope(h3);
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, lab.ipv4(h1).c_str(), &to.sin_addr);
    auto send = [&](const std::vector<uint8_t>& d) {
      sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    };
    const Identity mallory = Identity::generate();
    lan::RendezvousCrypto m(mallory, {});
    const std::vector<uint8_t> blob(100, 0x42);
    send({'P', 'L', 'L', 'R'});              // truncated
    send(std::vector<uint8_t>(1200, 0xff));  // not ours at all (a DNS message? no)
    std::vector<uint8_t> forged = *m.seal(a_key, blob.data(), blob.size(), 1);
    forged[forged.size() - 1] ^= 1;
    send(forged);                                                                 // bad tag
    send(*m.seal(b.host->identity().public_key(), blob.data(), blob.size(), 2));  // for someone else
    const std::vector<uint8_t> genuine = *m.seal(a_key, blob.data(), blob.size(), 3);
    send(genuine);  // authentic (mallory's own key): delivered, the Host finds no session for it
    send(genuine);  // the same again: a replay
    close(fd);
  }
  ASSERT_TRUE(pump_until({a.host.get()},
                         [&] {
                           const LanCounters c = a.beacon->counters();
                           return c.blobs_rejected >= 3 && c.blobs_replayed >= 1 && c.blobs_received >= 1;
                         }))
      << "rejected " << a.beacon->counters().blobs_rejected << ", replayed "
      << a.beacon->counters().blobs_replayed;
  EXPECT_TRUE(pump_until({a.host.get()}, [&] { return a.host->counters().signaling_invalid >= 1; }));
  ConnectionHandle ba = 0, ab = 0;
  EXPECT_TRUE(connect(b, a, &ba, &ab));
  EXPECT_TRUE(transfer(*b.host, ba, *a.host, ab, 16, 4096));
}

// A peer that sets up many connections at once sends thousands of blobs to one peer: past the budget of a
// stranger's address (50 a second), within the larger one of an address that already sent authentic ones.
TEST(LanBeaconLab, ManyConnectionsAtOnce_AllConnect) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan}), h2 = lab.add_host({lan});
  LanNode a(h1, family(true)), b(h2, family(true));
  ASSERT_TRUE(pump_until({a.host.get(), b.host.get()}, [&] { return a.sees(b) && b.sees(a); }));
  constexpr size_t kConnections = 1000;  // two descriptors each per side: more than the default soft limit
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < 8192)
    GTEST_SKIP() << "RLIMIT_NOFILE's hard limit is low";
  const rlimit saved = limit;
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  std::vector<ConnectionHandle> handles;
  for (size_t i = 0; i < kConnections; ++i) {
    Result<ConnectionHandle> c = a.host->connect(b.id());
    ASSERT_TRUE(c) << c.error().message;
    handles.push_back(*c);
  }
  EXPECT_TRUE(pump_until(
      {a.host.get(), b.host.get()},
      [&] {
        const size_t done =
            a.events->count(ConnectionEventKind::kConnected) + a.events->count(ConnectionEventKind::kClosed);
        return done == kConnections && b.events->count(ConnectionEventKind::kConnected) == kConnections;
      },
      60s));
  EXPECT_EQ(a.events->count(ConnectionEventKind::kConnected), kConnections);
  if (auto closed = a.events->find(ConnectionEventKind::kClosed)) ADD_FAILURE() << closed->info.end_debug;
  EXPECT_EQ(b.events->count(ConnectionEventKind::kConnected), kConnections);
  for (ConnectionHandle c : handles)
    a.host->close(c);
  setrlimit(RLIMIT_NOFILE, &saved);
}

// Records multicast on the LAN by a hostile host (with the on-link hop limit): forged, unsigned, re-signed,
// replayed and garbage ones are ignored and counted by the beacon; the genuine one is believed.
TEST(LanBeaconLab, ForgedUnsignedReplayedRecords_IgnoredAndCounted) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan}), h3 = lab.add_host({lan});
  LanNode a(h1, family(true));
  const Identity mallory = Identity::generate(), victim = Identity::generate();
  const lan::dns::Name service = *lan::service_name("labtest");
  lan::Announcement an;
  an.key = mallory.public_key();
  an.display_name = "mallory";
  an.port = 9;
  in_addr ip{};
  inet_pton(AF_INET, lab.ipv4(h3).c_str(), &ip);
  an.ipv4 = {ip};
  auto wire = [&](const lan::dns::Message& m) { return *lan::dns::serialize(m); };
  an.serial = 1000;
  const std::vector<uint8_t> old_genuine = wire(*lan::announce(service, an, mallory.private_key(), {}));
  an.serial = 2000;
  const lan::dns::Message genuine = *lan::announce(service, an, mallory.private_key(), {});
  lan::dns::Message altered = genuine;  // the name changed after signing
  for (lan::dns::Record& r : altered.additionals)
    for (std::string& str : r.strings)
      if (str.rfind("n=", 0) == 0) str = "n=trusted";
  lan::dns::Message unsigned_records = genuine;  // no signature
  for (lan::dns::Record& r : unsigned_records.additionals)
    r.strings.erase(std::remove_if(r.strings.begin(), r.strings.end(),
                                   [](const std::string& x) { return x.rfind("s=", 0) == 0; }),
                    r.strings.end());
  lan::Announcement impostor = an;  // the victim's key, signed by mallory
  impostor.key = victim.public_key();
  impostor.display_name = "victim";
  const lan::dns::Message resigned = *lan::announce(service, impostor, mallory.private_key(), {});
  {
    netlab::NetnsScope scope(h3);
    lan::MdnsSocket socket;
    ASSERT_TRUE(socket.open(true, false, lan::kMdnsPort, &why)) << why;
    const int index = LanLab::interface_index(h3);
    ASSERT_TRUE(socket.join(index, &why)) << why;
    // The genuine record first, once a listens, and until a has it: what follows is then measured against it.
    ASSERT_TRUE(pump_until({a.host.get()}, [&] { return !a.beacon->interfaces().empty(); }));
    ASSERT_TRUE(pump_until({a.host.get()}, [&] {
      EXPECT_TRUE(socket.send_multicast(AF_INET, index, wire(genuine), &why)) << why;
      return pump_until(
          {a.host.get()}, [&] { return !a.beacon->peers().empty(); }, 200ms);
    }));
    for (const std::vector<uint8_t>& d : {wire(altered), wire(unsigned_records), wire(resigned), old_genuine,
                                          std::vector<uint8_t>(40, 0xee)}) {
      ASSERT_TRUE(socket.send_multicast(AF_INET, index, d, &why)) << why;
      std::this_thread::sleep_for(20ms);  // within the source's budget, in order
    }
  }
  ASSERT_TRUE(pump_until({a.host.get()},
                         [&] {
                           const LanCounters c = a.beacon->counters();
                           return c.bad_signature >= 3 && c.replayed >= 1 && c.malformed >= 1;
                         }))
      << "bad signatures " << a.beacon->counters().bad_signature << ", replayed "
      << a.beacon->counters().replayed;
  const std::vector<LanPeer> peers = a.beacon->peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].display_name, "mallory");  // the genuine record, and nothing else
  EXPECT_EQ(peers[0].key, mallory.public_key());
}

// An interface plugged in while running is served: the peers on it are found, a connection over it
// works, and the Host's running connections restart ICE at once; unplugged, its peers are lost at once and
// the connections restart ICE again. A peer that leaves (its Host destroyed) is lost at once, by its
// goodbye.
TEST(LanBeaconLab, InterfaceAddedOrRemovedWhileRunning_ConnectionsRestartIce_GoodbyeLostAtOnce) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan1 = lab.add_lan(), lan2 = lab.add_lan();
  const std::string h1 = lab.add_host({lan1}), h2 = lab.add_host({lan1}), h3 = lab.add_host({lan2});
  LanNode a(h1, {}), b(h2, {});
  auto c = std::make_unique<LanNode>(h3, LanOptions{});
  ASSERT_TRUE(pump_until({a.host.get()}, [&] { return a.sees(b); }));
  ConnectionHandle ab = 0, ba = 0;
  ASSERT_TRUE(connect(a, b, &ab, &ba));
  EXPECT_FALSE(a.sees(*c));

  EXPECT_EQ(lab.add_link(h1, lan2), 1);  // eth1, onto the second LAN
  ASSERT_TRUE(pump_until(
      {a.host.get()}, [&] { return a.sees(*c) && c->sees(a); }, 10s));
  EXPECT_EQ(a.beacon->interfaces(), (std::vector<std::string>{"eth0", "eth1"}));
  EXPECT_EQ(a.beacon->peer(c->id())->links.at(0).interface, "eth1");
  EXPECT_EQ(a.beacon->peer(b.id())->links.at(0).interface, "eth0");
  EXPECT_TRUE(pump_until({a.host.get()}, [&] { return a.beacon->counters().interface_changes >= 1; }));
  EXPECT_TRUE(pump_until({a.host.get()}, [&] { return a.host->counters().ice_restarts >= 1; }));
  EXPECT_TRUE(transfer(*a.host, ab, *b.host, ba, 64, 16 << 10));  // the connection went on
  ConnectionHandle ac = 0, ca = 0;
  ASSERT_TRUE(connect(a, *c, &ac, &ca));
  EXPECT_TRUE(transfer(*a.host, ac, *c->host, ca, 16, 4096));

  // eth1 goes away: its peer is lost at once, and the connections look for a path again (ab, over eth0,
  // goes on).
  LanEvent e;
  while (a.beacon->next_event(e, 0ms)) {
  }
  const uint64_t restarts = a.host->counters().ice_restarts;
  const auto t0 = std::chrono::steady_clock::now();
  netlab::run_checked({"ip", "-n", h1, "link", "del", "eth1"});
  ASSERT_TRUE(a.beacon->next_event(e, 2s));
  EXPECT_EQ(e.kind, LanEventKind::kLost);
  EXPECT_EQ(e.peer.id, c->id());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(a.beacon->interfaces(), std::vector<std::string>{"eth0"});
  // Counters are published at the end of the beacon's turn, after its events.
  EXPECT_TRUE(pump_until({a.host.get()}, [&] { return a.beacon->counters().interface_changes >= 2; }));
  EXPECT_TRUE(pump_until({a.host.get()}, [&] { return a.host->counters().ice_restarts > restarts; }));
  EXPECT_TRUE(transfer(*a.host, ab, *b.host, ba, 16, 4096));

  // b leaves: a hears its goodbye.
  const PeerId gone = b.id();
  while (a.beacon->next_event(e, 0ms)) {
  }
  const auto t1 = std::chrono::steady_clock::now();
  b.host.reset();
  ASSERT_TRUE(a.beacon->next_event(e, 2s));
  EXPECT_EQ(e.kind, LanEventKind::kLost);
  EXPECT_EQ(e.peer.id, gone);
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 1s);
  EXPECT_FALSE(a.beacon->peer(gone));
}

// A peer killed without a goodbye (a process, SIGKILL) is lost when its records expire: within its TTL.
TEST(LanBeaconLab, PeerKilled_LostWithinItsTtl) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan}), h2 = lab.add_host({lan});
  LanNode a(h1, {});
  const std::string log = ::testing::TempDir() + "lan-beacon-peer-" + std::to_string(getpid()) + ".log";
  const pid_t peer = netlab::spawn_in_netns(
      {LAN_BEACON_PEER, "--service", "labtest", "--name", "doomed", "--ttl", "10", "--responder", "own"}, h2,
      log);
  ASSERT_TRUE(pump_until({a.host.get()}, [&] { return a.beacon->peers().size() == 1; }));
  EXPECT_EQ(a.beacon->peers().front().display_name, "doomed");
  LanEvent e;
  while (a.beacon->next_event(e, 0ms)) {
  }
  kill(peer, SIGKILL);
  netlab::stop_child(peer, 0ms);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(a.beacon->next_event(e, 12s));
  const double after = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(e.kind, LanEventKind::kLost);
  EXPECT_LE(after, 10.5);
  std::printf("[ figures  ] a peer killed without a goodbye was lost after %.1f s (TTL 10 s)\n", after);
  std::remove(log.c_str());
}

}  // namespace
}  // namespace peerlink::test
