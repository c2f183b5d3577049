// Proves the NAT lab fixture does what it claims, with real packets: plain UDP/TCP sockets in the lab's
// namespaces, a STUN client of our own against coturn, and a second STUN responder in the "internet".
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "netlab/lab.hpp"
#include "netlab/responder.hpp"

namespace peerlink::netlab {
namespace {

using namespace std::chrono_literals;

#define NETLAB_REQUIRE_ROOT()                                    \
  do {                                                           \
    std::string why_not;                                         \
    if (!have_root_and_tools(&why_not)) GTEST_SKIP() << why_not; \
  } while (0)

// Short bounds: everything is local, an answer takes well under a millisecond.
constexpr auto kAnswer = 1000ms;  // for something that must arrive
constexpr auto kSilence = 400ms;  // for something that must not arrive

UdpSocket udp_in(const std::string& ns, const std::string& ip = "0.0.0.0", uint16_t port = 0) {
  NetnsScope scope(ns);
  return UdpSocket(ip, port);
}

std::optional<TcpSocket> tcp_in(const std::string& ns, const Endpoint& to, std::string* why = nullptr) {
  NetnsScope scope(ns);
  return TcpSocket::connect(to, kAnswer, why);
}

// First line of a /proc file as seen from namespace ns ("" for the caller's own).
std::string read_proc_in(const std::string& ns, const std::string& path) {
  std::optional<NetnsScope> scope;
  if (!ns.empty()) scope.emplace(ns);
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

Bytes text(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

// Interface names of the root namespace (where the lab must never add anything).
std::set<std::string> root_link_names() {
  std::set<std::string> names;
  std::istringstream lines(run_checked({"ip", "-o", "link", "show"}));
  std::string line;
  while (std::getline(lines, line)) {
    auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    auto end = line.find_first_of(":@", colon + 2);
    names.insert(line.substr(colon + 2, end - colon - 2));
  }
  return names;
}

bool pid_alive(pid_t pid) {
  return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

std::string param_name(const ::testing::TestParamInfo<NatType>& info) {
  std::string s = to_string(info.param);
  s.erase(std::remove(s.begin(), s.end(), '-'), s.end());
  return s;
}

// --- environment and namespace mechanics ---------------------------------------------------------------

TEST(NetlabEnvironment, ExplainsWhyItCannotRun) {
  std::string why;
  bool ok = have_root_and_tools(&why);
  EXPECT_EQ(ok, why.empty()) << why;
}

TEST(NetlabEnvironment, RestCredentialsMatchKnownAnswer) {
  // echo -n "1700000000:alice" | openssl dgst -sha1 -hmac north -binary | base64
  RestCredentials c = turn_rest_credentials("north", "alice", 0s, 1700000000);
  EXPECT_EQ(c.username, "1700000000:alice");
  EXPECT_EQ(c.password, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
  EXPECT_EQ(turn_rest_credentials("north", "alice", 3600s, 1700000000).username, "1700003600:alice");
}

TEST(NetlabEnvironment, StunCodecRoundTripsAndChecksIntegrity) {
  stun::Message m;
  m.type = stun::kAllocateRequest;
  m.txid = stun::random_transaction_id();
  m.add(stun::kUsername, std::string("abc"));  // padded to 4
  m.add(stun::kXorMappedAddress, stun::encode_xor_address({"203.0.113.11", 40000}));
  const Bytes key = stun::long_term_key("u", "r", "p");
  Bytes raw = stun::encode(m, &key);
  ASSERT_EQ(raw.size() % 4, 0u);
  auto back = stun::decode(raw);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->type, m.type);
  EXPECT_EQ(back->txid, m.txid);
  ASSERT_TRUE(back->find(stun::kXorMappedAddress));
  EXPECT_EQ(stun::decode_xor_address(back->find(stun::kXorMappedAddress)->value),
            (Endpoint{"203.0.113.11", 40000}));
  EXPECT_TRUE(stun::check_integrity(raw, key));
  EXPECT_FALSE(stun::check_integrity(raw, stun::long_term_key("u", "r", "wrong")));
  raw[25] ^= 1;  // inside USERNAME
  EXPECT_FALSE(stun::check_integrity(raw, key));
  EXPECT_FALSE(stun::decode(Bytes(raw.begin(), raw.end() - 4)));
}

TEST(NetnsScopeTest, EntersOnlyThisThreadAndRestores) {
  NETLAB_REQUIRE_ROOT();
  LabOptions o;
  o.start_turn = false;
  Lab lab(o);
  Site site = lab.add_site(NatType::kPortRestricted);
  const unsigned long outside = current_netns_inode();
  unsigned long inside = 0, thread_inside = 0, thread_after = 0;
  std::thread t;
  std::atomic<bool> go{false};
  {
    NetnsScope scope(site.peer_ns(0));
    inside = current_netns_inode();
    // A thread started inside the scope inherits the namespace and keeps it after the scope ends.
    t = std::thread([&] {
      thread_inside = current_netns_inode();
      while (!go)
        std::this_thread::sleep_for(1ms);
      thread_after = current_netns_inode();
    });
    {
      NetnsScope nested(lab.internet_ns());
      EXPECT_NE(current_netns_inode(), inside);
    }
    EXPECT_EQ(current_netns_inode(), inside);
  }
  EXPECT_EQ(current_netns_inode(), outside);
  go = true;
  t.join();
  EXPECT_NE(inside, outside);
  EXPECT_EQ(thread_inside, inside);
  EXPECT_EQ(thread_after, inside);
  EXPECT_THROW(NetnsScope("plnl-no-such-namespace"), std::runtime_error);
  EXPECT_EQ(current_netns_inode(), outside);
}

TEST(LabTopology, NothingAppearsInTheRootNamespaceAndOnlyRoutersForward) {
  NETLAB_REQUIRE_ROOT();
  const std::set<std::string> root_links_before = root_link_names();
  const std::string root_forward_before = read_proc_in("", "/proc/sys/net/ipv4/ip_forward");
  {
    LabOptions o;
    o.start_turn = false;
    Lab lab(o);
    Site nat = lab.add_site(NatType::kSymmetric, 2);
    Site pub = lab.add_site(NatType::kNone);
    EXPECT_EQ(root_link_names(), root_links_before);
    EXPECT_EQ(read_proc_in(nat.router_ns(), "/proc/sys/net/ipv4/ip_forward"), "1");
    EXPECT_EQ(read_proc_in(nat.peer_ns(0), "/proc/sys/net/ipv4/ip_forward"), "0");
    EXPECT_EQ(read_proc_in(pub.peer_ns(0), "/proc/sys/net/ipv4/ip_forward"), "0");
    EXPECT_EQ(read_proc_in(lab.internet_ns(), "/proc/sys/net/ipv4/ip_forward"), "0");
    EXPECT_EQ(read_proc_in(nat.peer_ns(1), "/proc/sys/net/ipv6/conf/all/disable_ipv6"), "1");
    for (const auto& ns : lab.namespaces())
      EXPECT_EQ(ns.rfind(lab.prefix(), 0), 0u) << ns;
    // Interface names fit IFNAMSIZ and the LAN bridge has IGMP snooping off.
    EXPECT_NE(
        run_checked({"ip", "-n", nat.router_ns(), "-d", "link", "show", "br0"}).find("mcast_snooping 0"),
        std::string::npos);
    // Peers on one LAN reach each other directly, untouched by the router's rules (the bridge is a plain
    // switch: br_netfilter is off in lab namespaces), even where UDP to the internet is blocked and lost.
    EXPECT_EQ(read_proc_in(nat.router_ns(), "/proc/sys/net/bridge/bridge-nf-call-iptables").substr(0, 1),
              std::string(std::filesystem::exists("/proc/sys/net/bridge") ? "0" : ""));
    Site blocked = lab.add_site(NatType::kUdpBlocked, 2);
    lab.set_loss(blocked, 100);
    for (const Site& s : {nat, blocked}) {
      UdpSocket a = udp_in(s.peer_ns(0));
      UdpSocket b = udp_in(s.peer_ns(1), s.peer_ip(1), 7000);
      ASSERT_TRUE(a.send_to({s.peer_ip(1), 7000}, text("lan")));
      auto got = b.receive(kAnswer);
      ASSERT_TRUE(got) << to_string(s.nat());
      EXPECT_EQ(got->from.ip, s.peer_ip(0));
    }
    EXPECT_TRUE(lab.conntrack(blocked).empty()) << "LAN traffic is not tracked by the router";
    // The internet's default route goes to the black hole: sending anywhere succeeds quietly.
    UdpSocket inet = udp_in(lab.internet_ns(), lab.turn_server().ip);
    EXPECT_TRUE(inet.send_to({"198.51.100.77", 9}, text("void")));
  }
  EXPECT_EQ(root_link_names(), root_links_before);
  EXPECT_EQ(read_proc_in("", "/proc/sys/net/ipv4/ip_forward"), root_forward_before);
}

// --- NAT behaviours ---------------------------------------------------------------------------------------

class NatBehaviour : public ::testing::TestWithParam<NatType> {
 protected:
  void SetUp() override {
    NETLAB_REQUIRE_ROOT();
    lab_ = std::make_unique<Lab>();
    site_ = lab_->add_site(GetParam());
  }
  std::unique_ptr<Lab> lab_;
  Site site_;
};

TEST_P(NatBehaviour, CoturnSeesThePublicAddress) {
  UdpSocket sock = udp_in(site_.peer_ns(0));
  const uint16_t local_port = sock.local().port;
  if (GetParam() == NatType::kUdpBlocked) {
    EXPECT_FALSE(stun::binding(sock, lab_->turn_server(), kSilence)) << "UDP must be blocked";
    std::string why;
    auto tcp = tcp_in(site_.peer_ns(0), lab_->turn_server(), &why);
    ASSERT_TRUE(tcp) << why;
    auto over_tcp = stun::binding_tcp(*tcp, kAnswer);
    ASSERT_TRUE(over_tcp) << "STUN over TCP to coturn";
    EXPECT_EQ(over_tcp->ip, site_.wan_ip());
    EXPECT_EQ(over_tcp->port, tcp->local().port) << "TCP is masqueraded port-preserving";
    return;
  }
  auto mapped = stun::binding(sock, lab_->turn_server(), kAnswer);
  ASSERT_TRUE(mapped) << "no STUN answer from coturn";
  EXPECT_EQ(mapped->ip, site_.public_ip(0));
  if (GetParam() != NatType::kSymmetric) {
    EXPECT_EQ(mapped->port, local_port) << "port-preserving mapping";
  }
  // The REST server sees the same.
  auto mapped2 = stun::binding(sock, lab_->turn_rest_server(), kAnswer);
  ASSERT_TRUE(mapped2);
  EXPECT_EQ(mapped2->ip, site_.public_ip(0));
}

TEST_P(NatBehaviour, MappingDependsOnDestinationOnlyWhenSymmetric) {
  StunResponder other(lab_->internet_ns(), lab_->internet_host_ip(0), 4000);
  UdpSocket sock = udp_in(site_.peer_ns(0));
  if (GetParam() == NatType::kUdpBlocked) {
    EXPECT_FALSE(stun::binding(sock, lab_->turn_server(), kSilence));
    EXPECT_FALSE(stun::binding(sock, other.address(), kSilence));
    EXPECT_TRUE(other.seen().empty()) << "UDP left the site";
    return;
  }
  auto to_turn = stun::binding(sock, lab_->turn_server(), kAnswer);
  auto to_other = stun::binding(sock, other.address(), kAnswer);
  auto to_turn_rest = stun::binding(sock, lab_->turn_rest_server(), kAnswer);
  ASSERT_TRUE(to_turn && to_other && to_turn_rest);
  ASSERT_FALSE(other.seen().empty());
  EXPECT_EQ(other.seen().back(), *to_other);
  EXPECT_EQ(to_turn->ip, site_.public_ip(0));
  EXPECT_EQ(to_other->ip, site_.public_ip(0));
  if (GetParam() == NatType::kSymmetric) {
    std::set<uint16_t> ports{to_turn->port, to_other->port, to_turn_rest->port};
    EXPECT_EQ(ports.size(), 3u) << "a new external port per destination";
  } else {
    EXPECT_EQ(to_turn->port, to_other->port);
    EXPECT_EQ(to_turn->port, to_turn_rest->port);
  }
  // The same destination again keeps its mapping, for every type.
  auto again = stun::binding(sock, lab_->turn_server(), kAnswer);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *to_turn);
}

TEST_P(NatBehaviour, UnsolicitedInboundReachesThePeerOnlyBehindFullCone) {
  UdpSocket sock = udp_in(site_.peer_ns(0));
  if (GetParam() == NatType::kUdpBlocked) {
    // Blocked both ways: neither the peer's datagram out nor one to the router's WAN port in.
    UdpSocket stranger = udp_in(lab_->internet_ns(), lab_->internet_host_ip(1), 5000);
    ASSERT_TRUE(sock.send_to(stranger.local(), text("out")));
    EXPECT_FALSE(stranger.receive(kSilence));
    ASSERT_TRUE(stranger.send_to({site_.wan_ip(), sock.local().port}, text("in")));
    EXPECT_FALSE(sock.receive(kSilence));
    return;
  }
  auto mapped = stun::binding(sock, lab_->turn_server(), kAnswer);
  ASSERT_TRUE(mapped);
  const bool open = GetParam() == NatType::kFullCone || GetParam() == NatType::kNone;

  // A host the peer never talked to.
  UdpSocket stranger = udp_in(lab_->internet_ns(), lab_->internet_host_ip(1), 5000);
  ASSERT_TRUE(stranger.send_to(*mapped, text("unsolicited")));
  auto got = sock.receive(open ? kAnswer : kSilence);
  EXPECT_EQ(got.has_value(), open) << "unsolicited datagram from another host, " << to_string(GetParam());
  if (got) {
    EXPECT_EQ(got->from, stranger.local());
  }

  // The server's own address from another port (port-restricted, not address-restricted).
  UdpSocket same_host = udp_in(lab_->internet_ns(), lab_->turn_server().ip, 5001);
  ASSERT_TRUE(same_host.send_to(*mapped, text("other port")));
  got = sock.receive(open ? kAnswer : kSilence);
  EXPECT_EQ(got.has_value(), open) << "from the server's address, another port";

  // Control: once the peer has sent to the stranger, the stranger's answer to where it saw the peer
  // comes through for every type (proves the silence above is filtering, not a broken path).
  ASSERT_TRUE(sock.send_to(stranger.local(), text("punch")));
  auto punch = stranger.receive(kAnswer);
  ASSERT_TRUE(punch);
  ASSERT_TRUE(stranger.send_to(punch->from, text("answer")));
  got = sock.receive(kAnswer);
  ASSERT_TRUE(got);
  EXPECT_EQ(std::string(got->data.begin(), got->data.end()), "answer");
}

// ICE checks cross: the remote's first packet often arrives before the peer has sent to it. That packet
// must not leave a conntrack entry behind that makes the peer's own later flow to the remote clash and get
// another port (DESIGN §7: without the inbound drop, masquerade turns symmetric this way).
class UdpNatBehaviour : public NatBehaviour {};

TEST_P(UdpNatBehaviour, RemoteSendingFirstDoesNotMoveTheMapping) {
  UdpSocket sock = udp_in(site_.peer_ns(0));
  auto mapped = stun::binding(sock, lab_->turn_server(), kAnswer);
  ASSERT_TRUE(mapped);
  UdpSocket remote = udp_in(lab_->internet_ns(), lab_->internet_host_ip(3), 7000);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(remote.send_to(*mapped, text("early check")));
  const bool open = GetParam() == NatType::kFullCone || GetParam() == NatType::kNone;
  for (int i = 0; i < 3; ++i) {
    auto early = sock.receive(open ? kAnswer : 100ms);
    EXPECT_EQ(early.has_value(), open);
  }
  ASSERT_TRUE(sock.send_to(remote.local(), text("check")));
  auto seen = remote.receive(kAnswer);
  ASSERT_TRUE(seen) << "the peer's own packet to the remote must get through";
  if (GetParam() != NatType::kSymmetric) {
    EXPECT_EQ(seen->from, *mapped) << "the same endpoint-independent mapping";
  }
  ASSERT_TRUE(remote.send_to(seen->from, text("answer")));
  EXPECT_TRUE(sock.receive(kAnswer));
}

TEST_P(NatBehaviour, FlushNatRebindsToANewExternalPort) {
  if (!site_.has_router()) {
    EXPECT_THROW(lab_->flush_nat(site_), std::invalid_argument);
    return;
  }
  if (GetParam() == NatType::kUdpBlocked) {
    // TCP flows are rebound too: a connection's next segment leaves from a new port, which the server
    // does not know (it answers with a reset); a new connection from the same local port gets the new one.
    std::string why;
    auto tcp = tcp_in(site_.peer_ns(0), lab_->turn_server(), &why);
    ASSERT_TRUE(tcp) << why;
    auto before = stun::binding_tcp(*tcp, kAnswer);
    ASSERT_TRUE(before);
    lab_->flush_nat(site_);
    EXPECT_FALSE(stun::binding_tcp(*tcp, kSilence)) << "the old connection is gone";
    EXPECT_NE(lab_->nat_ruleset(site_).find("th sport " + std::to_string(tcp->local().port)),
              std::string::npos);
    return;
  }
  StunResponder other(lab_->internet_ns(), lab_->internet_host_ip(0), 4000);
  UdpSocket sock = udp_in(site_.peer_ns(0));
  auto first = stun::binding(sock, lab_->turn_server(), kAnswer);
  ASSERT_TRUE(first);

  lab_->flush_nat(site_);
  auto second = stun::binding(sock, lab_->turn_server(), kAnswer);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->ip, site_.wan_ip());
  EXPECT_NE(second->port, first->port) << "same flow, new external port after flush_nat";

  auto second_other = stun::binding(sock, other.address(), kAnswer);
  ASSERT_TRUE(second_other);
  if (GetParam() == NatType::kSymmetric)
    EXPECT_NE(second_other->port, second->port);
  else
    EXPECT_EQ(second_other->port, second->port) << "still endpoint-independent after the rebinding";

  // The old mapping is dead (for full cone it no longer lets anyone in), the new one works.
  UdpSocket stranger = udp_in(lab_->internet_ns(), lab_->internet_host_ip(2), 6000);
  ASSERT_TRUE(stranger.send_to(*first, text("to the old mapping")));
  EXPECT_FALSE(sock.receive(kSilence)) << "old mapping still delivers";
  if (GetParam() == NatType::kFullCone) {
    ASSERT_TRUE(stranger.send_to(*second, text("to the new mapping")));
    auto got = sock.receive(kAnswer);
    ASSERT_TRUE(got) << "full cone: the new mapping accepts anyone";
  }

  // Again: every rebinding moves on.
  lab_->flush_nat(site_);
  auto third = stun::binding(sock, lab_->turn_server(), kAnswer);
  ASSERT_TRUE(third);
  EXPECT_NE(third->port, second->port);
  EXPECT_NE(third->port, first->port);

  // A socket that had no mapping yet is unaffected: port-preserving NATs still keep its port.
  UdpSocket fresh = udp_in(site_.peer_ns(0));
  auto fresh_mapped = stun::binding(fresh, lab_->turn_server(), kAnswer);
  ASSERT_TRUE(fresh_mapped);
  if (GetParam() != NatType::kSymmetric) {
    EXPECT_EQ(fresh_mapped->port, fresh.local().port);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, NatBehaviour,
                         ::testing::Values(NatType::kNone, NatType::kFullCone, NatType::kPortRestricted,
                                           NatType::kSymmetric, NatType::kUdpBlocked),
                         param_name);

INSTANTIATE_TEST_SUITE_P(UdpTypes, UdpNatBehaviour,
                         ::testing::Values(NatType::kNone, NatType::kFullCone, NatType::kPortRestricted,
                                           NatType::kSymmetric),
                         param_name);

// Why flush_nat needs more than a conntrack flush: Linux NAT prefers the original source port, so after a
// bare flush a port-preserving NAT maps the flow to the very same port again.
TEST(NatRebinding, ConntrackFlushAloneKeepsAPreservedPort) {
  NETLAB_REQUIRE_ROOT();
  Lab lab;
  Site site = lab.add_site(NatType::kPortRestricted);
  UdpSocket sock = udp_in(site.peer_ns(0));
  auto first = stun::binding(sock, lab.turn_server(), kAnswer);
  ASSERT_TRUE(first);
  auto entries = lab.conntrack(site);
  EXPECT_TRUE(std::any_of(entries.begin(), entries.end(), [&](const ConntrackEntry& e) {
    return e.orig_src == site.peer_ip(0) && e.reply_dst == site.wan_ip() && e.reply_dport == first->port;
  }));
  flush_conntrack(site.router_ns());
  entries = lab.conntrack(site);
  EXPECT_TRUE(std::none_of(entries.begin(), entries.end(),
                           [&](const ConntrackEntry& e) { return e.orig_src == site.peer_ip(0); }));
  auto second = stun::binding(sock, lab.turn_server(), kAnswer);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->port, first->port);
}

TEST(MultiPeerSite, PeersShareTheWanAddressWithDistinctPorts) {
  NETLAB_REQUIRE_ROOT();
  Lab lab;
  Site site = lab.add_site(NatType::kPortRestricted, 3);
  std::vector<UdpSocket> socks;
  std::set<uint16_t> ports;
  for (int i = 0; i < site.peer_count(); ++i) {
    socks.push_back(udp_in(site.peer_ns(i), "0.0.0.0", 40000));  // the same local port everywhere
    auto m = stun::binding(socks.back(), lab.turn_server(), kAnswer);
    ASSERT_TRUE(m) << "peer " << i;
    EXPECT_EQ(m->ip, site.wan_ip());
    ports.insert(m->port);
  }
  EXPECT_EQ(ports.size(), 3u) << "clashing source ports get distinct external ports";
  EXPECT_EQ(ports.count(40000), 1u) << "the first keeps its port";
}

// --- coturn ------------------------------------------------------------------------------------------------

class TurnServers : public ::testing::Test {
 protected:
  void SetUp() override {
    NETLAB_REQUIRE_ROOT();
    lab_ = std::make_unique<Lab>();
    site_ = lab_->add_site(NatType::kPortRestricted);
  }
  std::unique_ptr<Lab> lab_;
  Site site_;
};

TEST_F(TurnServers, UnauthenticatedAllocateIsChallengedWithRealmAndNonce) {
  for (const Endpoint& server : {lab_->turn_server(), lab_->turn_rest_server()}) {
    UdpSocket sock = udp_in(site_.peer_ns(0));
    stun::AllocateResult r = stun::allocate(sock, server, std::nullopt, kAnswer);
    ASSERT_TRUE(r.answered) << server.str();
    EXPECT_EQ(r.error_code, 401) << server.str() << " " << r.reason;
    EXPECT_EQ(r.realm, lab_->turn_realm());
    EXPECT_FALSE(r.nonce.empty());
  }
}

TEST_F(TurnServers, StaticLongTermUserAllocates) {
  UdpSocket sock = udp_in(site_.peer_ns(0));
  stun::AllocateResult r = stun::allocate(sock, lab_->turn_server(), lab_->turn_credentials(), kAnswer);
  ASSERT_TRUE(r.ok()) << r.error_code << " " << r.reason << "\n" << lab_->turn().log_tail();
  EXPECT_EQ(r.relayed->ip, lab_->turn_server().ip);
  ASSERT_TRUE(r.mapped);
  EXPECT_EQ(r.mapped->ip, site_.wan_ip());
  EXPECT_TRUE(r.integrity_ok) << "coturn's answer is signed with our key";

  UdpSocket wrong = udp_in(site_.peer_ns(0));
  stun::Credentials bad = lab_->turn_credentials();
  bad.password += "x";
  stun::AllocateResult w = stun::allocate(wrong, lab_->turn_server(), bad, kAnswer);
  EXPECT_TRUE(w.answered);
  EXPECT_EQ(w.error_code, 401);
}

TEST_F(TurnServers, RestApiCredentialsAllocate) {
  UdpSocket sock = udp_in(site_.peer_ns(0));
  stun::AllocateResult r =
      stun::allocate(sock, lab_->turn_rest_server(), lab_->turn_rest_credentials("alice"), kAnswer);
  ASSERT_TRUE(r.ok()) << r.error_code << " " << r.reason << "\n" << lab_->turn_rest().log_tail();
  EXPECT_EQ(r.relayed->ip, lab_->turn_rest_server().ip);
  EXPECT_TRUE(r.integrity_ok);

  UdpSocket expired = udp_in(site_.peer_ns(0));
  stun::AllocateResult e =
      stun::allocate(expired, lab_->turn_rest_server(), lab_->turn_rest_credentials("alice", -60s), kAnswer);
  EXPECT_TRUE(e.answered);
  EXPECT_EQ(e.error_code, 401) << "expired credentials";

  UdpSocket static_user = udp_in(site_.peer_ns(0));
  stun::AllocateResult s =
      stun::allocate(static_user, lab_->turn_rest_server(), lab_->turn_credentials(), kAnswer);
  EXPECT_EQ(s.error_code, 401) << "the REST server knows no static users";
}

// The path a relayed ICE pair takes: from one allocation's client through coturn to the other allocation's
// relayed address, and out to that allocation's client, framed as ChannelData both ways.
TEST_F(TurnServers, ChannelDataCrossesTwoAllocations) {
  UdpSocket a = udp_in(site_.peer_ns(0)), b = udp_in(site_.peer_ns(0));
  const stun::Credentials creds = lab_->turn_credentials();
  stun::AllocateResult ra = stun::allocate(a, lab_->turn_server(), creds, kAnswer);
  stun::AllocateResult rb = stun::allocate(b, lab_->turn_server(), creds, kAnswer);
  ASSERT_TRUE(ra.ok() && rb.ok()) << ra.error_code << " " << rb.error_code << "\n" << lab_->turn().log_tail();
  EXPECT_EQ(
      stun::channel_bind(a, lab_->turn_server(), creds, ra.realm, ra.nonce, 0x3fff, *rb.relayed, kAnswer),
      400)
      << "channel numbers start at 0x4000";
  ASSERT_EQ(
      stun::channel_bind(a, lab_->turn_server(), creds, ra.realm, ra.nonce, 0x4000, *rb.relayed, kAnswer), 0);
  ASSERT_EQ(
      stun::channel_bind(b, lab_->turn_server(), creds, rb.realm, rb.nonce, 0x4123, *ra.relayed, kAnswer), 0);

  const Bytes payload = {'r', 'e', 'l', 'a', 'y', 'e', 'd'};
  ASSERT_TRUE(a.send_to(lab_->turn_server(), stun::channel_data(0x4000, payload)));
  auto d = b.receive(kAnswer);
  ASSERT_TRUE(d) << "nothing came out of b's allocation";
  EXPECT_EQ(d->from, lab_->turn_server());
  EXPECT_EQ(d->data, stun::channel_data(0x4123, payload)) << "b's own channel number for a's relayed address";
}

TEST_F(TurnServers, StopAndStartTakeTheServersDownAndUp) {
  const pid_t pid = lab_->turn().pid();
  const pid_t rest_pid = lab_->turn_rest().pid();
  ASSERT_TRUE(pid_alive(pid));
  ASSERT_TRUE(pid_alive(rest_pid));
  lab_->stop_turn();
  EXPECT_FALSE(lab_->turn_running());
  EXPECT_FALSE(pid_alive(pid));
  EXPECT_FALSE(pid_alive(rest_pid));
  UdpSocket sock = udp_in(site_.peer_ns(0));
  EXPECT_FALSE(stun::binding(sock, lab_->turn_server(), kSilence));
  lab_->start_turn();
  EXPECT_TRUE(lab_->turn_running());
  EXPECT_TRUE(stun::binding(sock, lab_->turn_server(), kAnswer));
  EXPECT_TRUE(stun::binding(sock, lab_->turn_rest_server(), kAnswer));
}

// --- loss, teardown, isolation -------------------------------------------------------------------------

TEST(Loss, DropsOnTheSiteUplinkAndCanBeRemoved) {
  NETLAB_REQUIRE_ROOT();
  LabOptions o;
  o.start_turn = false;
  Lab lab(o);
  Site nat = lab.add_site(NatType::kPortRestricted);
  Site pub = lab.add_site(NatType::kNone);
  StunResponder responder(lab.internet_ns(), lab.internet_host_ip(0), 4000);
  for (const Site& site : {nat, pub}) {
    UdpSocket sock = udp_in(site.peer_ns(0));
    ASSERT_TRUE(stun::binding(sock, responder.address(), kAnswer)) << to_string(site.nat());
    lab.set_loss(site, 100);
    EXPECT_FALSE(stun::binding(sock, responder.address(), kSilence)) << to_string(site.nat());
    lab.set_loss(site, 30);
    // 200 requests at once; each round trip survives with probability 0.7 * 0.7 = 0.49.
    for (int i = 0; i < 200; ++i) {
      stun::Message req;
      req.type = stun::kBindingRequest;
      req.txid = stun::random_transaction_id();
      ASSERT_TRUE(sock.send_to(responder.address(), stun::encode(req)));
    }
    int answers = 0;
    while (sock.receive(200ms))
      ++answers;
    EXPECT_GT(answers, 50) << to_string(site.nat());
    EXPECT_LT(answers, 150) << to_string(site.nat());
    lab.set_loss(site, 0);
    EXPECT_TRUE(stun::binding(sock, responder.address(), kAnswer)) << to_string(site.nat());
  }
}

TEST(LabTeardown, RemovesEveryNamespaceAndStopsCoturn) {
  NETLAB_REQUIRE_ROOT();
  std::string prefix, work_dir;
  std::vector<std::string> names;
  pid_t pid = 0, rest_pid = 0;
  {
    Lab lab;
    for (NatType t : {NatType::kNone, NatType::kFullCone, NatType::kPortRestricted, NatType::kSymmetric,
                      NatType::kUdpBlocked})
      lab.add_site(t, 2);
    prefix = lab.prefix();
    names = lab.namespaces();
    work_dir = lab.work_dir();
    pid = lab.turn().pid();
    rest_pid = lab.turn_rest().pid();
    EXPECT_EQ(names.size(), 1u + 2u + 4u * 3u);
    for (const auto& n : names)
      EXPECT_TRUE(netns_exists(n)) << n;
    EXPECT_TRUE(pid_alive(pid));
    EXPECT_TRUE(pid_alive(rest_pid));
  }
  const std::string listed = run_checked({"ip", "netns", "list"});
  EXPECT_EQ(listed.find(prefix + "-"), std::string::npos) << listed;
  for (const auto& n : names)
    EXPECT_FALSE(netns_exists(n)) << n;
  EXPECT_FALSE(pid_alive(pid));
  EXPECT_FALSE(pid_alive(rest_pid));
  EXPECT_FALSE(std::filesystem::exists(work_dir));
}

TEST(LabTeardown, TwoLabsInOneProcessDoNotCollide) {
  NETLAB_REQUIRE_ROOT();
  Lab a;
  Lab b;
  EXPECT_NE(a.prefix(), b.prefix());
  Site sa = a.add_site(NatType::kSymmetric);
  Site sb = b.add_site(NatType::kSymmetric);
  EXPECT_EQ(sa.wan_ip(), sb.wan_ip()) << "same addresses, separate worlds";
  UdpSocket ua = udp_in(sa.peer_ns(0));
  UdpSocket ub = udp_in(sb.peer_ns(0));
  EXPECT_TRUE(stun::binding(ua, a.turn_server(), kAnswer));
  EXPECT_TRUE(stun::binding(ub, b.turn_server(), kAnswer));
  EXPECT_NE(a.turn().pid(), b.turn().pid());
}

}  // namespace
}  // namespace peerlink::netlab
