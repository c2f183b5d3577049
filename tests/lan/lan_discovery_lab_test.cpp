// The LAN beacon's querier and responder on real LANs in namespaces, over the mDNS sockets: peers discover
// each other at start over IPv4 and over IPv6, a LAN never sees another, a host on two LANs sees each peer
// on the right interface, and a goodbye is heard at once.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "lan/lab_beacon.hpp"
#include "lan/lan_lab.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;

template <typename F>
bool wait_for(F done, std::chrono::milliseconds timeout = 5s) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(LanDiscoveryLab, PeersFindEachOtherOverIpv4AndOverIpv6_LansStayApart_DualHomedSeesBoth_GoodbyeIsHeard) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan1 = lab.add_lan(), lan2 = lab.add_lan();
  const std::string h1 = lab.add_host({lan1}), h2 = lab.add_host({lan1}), h3 = lab.add_host({lan1});
  const std::string isolated = lab.add_host({lan2});
  const std::string both = lab.add_host({lan2, lan1});  // eth0 on the second LAN, eth1 on the first

  for (const bool v4 : {true, false}) {
    SCOPED_TRACE(v4 ? "IPv4 only" : "IPv6 only");
    auto b1 = std::make_unique<LabBeacon>(h1, 1, v4, !v4);
    auto b2 = std::make_unique<LabBeacon>(h2, 1, v4, !v4);
    auto b3 = std::make_unique<LabBeacon>(h3, 1, v4, !v4);
    auto bi = std::make_unique<LabBeacon>(isolated, 1, v4, !v4);
    auto bb = std::make_unique<LabBeacon>(both, 2, v4, !v4);
    const auto t0 = std::chrono::steady_clock::now();
    for (LabBeacon* b : {b1.get(), b2.get(), b3.get(), bi.get(), bb.get()})
      b->start();
    ASSERT_TRUE(wait_for([&] {
      return b1->peers().size() == 3 && b2->peers().size() == 3 && b3->peers().size() == 3 &&
             bi->peers().size() == 1 && bb->peers().size() == 4;
    })) << "h1 sees "
        << b1->peers().size() << ", isolated sees " << bi->peers().size() << ", dual-homed sees "
        << bb->peers().size();
    std::printf("[ figures  ] %s: 5 beacons started at once to all discovered in %.1f ms\n",
                v4 ? "IPv4" : "IPv6",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    // The isolated LAN's host sees only the dual-homed one; the dual-homed host each peer on its link.
    EXPECT_EQ(bi->peers().count(bb->key()), 1u);
    const auto seen = bb->peers();
    EXPECT_EQ(seen.at(b1->key()).interfaces.at(0).interface_index, LanLab::interface_index(both, 1));
    EXPECT_EQ(seen.at(bi->key()).interfaces.at(0).interface_index, LanLab::interface_index(both, 0));
    const lan::PeerSighting s = b1->peers().at(b2->key()).interfaces.at(0);
    if (v4) {
      ASSERT_EQ(s.ipv4.size(), 1u);
      EXPECT_EQ(lan::SocketAddress::ipv4(s.ipv4[0], 0).str(), lab.ipv4(h2) + ":0");
    } else {
      ASSERT_FALSE(s.ipv6.empty());
      EXPECT_TRUE(IN6_IS_ADDR_LINKLOCAL(&s.ipv6[0]));
    }
    EXPECT_EQ(b1->counters().bad_signature + b1->counters().malformed + b1->counters().off_link, 0u);
    // h2 leaves with a goodbye: everyone on its LAN forgets it at once.
    const lan::Key gone = b2->key();
    b2.reset();
    EXPECT_TRUE(wait_for(
        [&] {
          return b1->peers().count(gone) == 0 && b3->peers().count(gone) == 0 && bb->peers().count(gone) == 0;
        },
        3s));
  }
}

}  // namespace
}  // namespace peerlink::test

namespace peerlink::test {
namespace {

TEST(LanDiscoveryLab, TwentyPeersOnOneLanAllDiscoverEachOther_ALateJoinerSeesAllAndIsSeen) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  std::vector<std::string> hosts;
  for (int i = 0; i < 20; ++i)
    hosts.push_back(lab.add_host({lan}));
  std::vector<std::unique_ptr<LabBeacon>> beacons;
  for (size_t i = 0; i + 1 < hosts.size(); ++i)
    beacons.push_back(std::make_unique<LabBeacon>(hosts[i], 1, true, true));
  for (auto& b : beacons)
    b->start();
  ASSERT_TRUE(wait_for(
      [&] {
        for (auto& b : beacons)
          if (b->peer_count() != 18) return false;
        return true;
      },
      10s));
  // The twentieth starts later: its query reaches all, their answers reach it.
  std::this_thread::sleep_for(200ms);
  beacons.push_back(std::make_unique<LabBeacon>(hosts.back(), 1, true, true));
  beacons.back()->start();
  ASSERT_TRUE(wait_for(
      [&] {
        for (auto& b : beacons)
          if (b->peer_count() != 19) return false;
        return true;
      },
      10s));
  for (auto& b : beacons) {
    const lan::EngineCounters c = b->counters();
    EXPECT_EQ(c.bad_signature + c.malformed + c.off_link + c.replayed + c.peers_refused, 0u);
  }
}

}  // namespace
}  // namespace peerlink::test
