// The LAN beacon's querier and responder on real LANs in namespaces, over the mDNS sockets: peers discover
// each other at start over IPv4 and over IPv6, a LAN never sees another, a host on two LANs sees each peer
// on the right interface, and a goodbye is heard at once.
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "lan/lan_lab.hpp"
#include "mdns_engine.hpp"
#include "mdns_socket.hpp"
#include "netlab/netns.hpp"
#include "peerlink/identity.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;
using lan::MdnsEngine;

// One peer's beacon: an engine and its sockets served by a thread inside the host's namespace.
class LabBeacon {
 public:
  LabBeacon(const std::string& ns, int interfaces, bool ipv4, bool ipv6) : ns_(ns) {
    lan::EngineConfig c;
    c.service = *lan::service_name("labtest");
    c.self.key = id_.public_key();
    c.self.display_name = ns;
    c.self.port = 40000;
    c.private_key = id_.private_key();
    c.ipv4 = ipv4;
    c.ipv6 = ipv6;
    c.first_serial = 1;
    engine_ = std::make_unique<MdnsEngine>(c);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    netlab::NetnsScope scope(ns);
    std::string why;
    if (!socket_.open(ipv4, ipv6, lan::kMdnsPort, &why)) throw std::runtime_error(ns + ": " + why);
    for (int k = 0; k < interfaces; ++k) {
      if (!socket_.join(LanLab::interface_index(ns, k), &why)) throw std::runtime_error(ns + ": " + why);
      add_interface(k);
    }
    thread_ = std::thread([this] { run(); });
  }
  ~LabBeacon() {
    {
      std::lock_guard<std::mutex> lock(m_);
      engine_->goodbye();
      flush();
    }
    stop_ = true;
    const uint64_t one = 1;
    (void)!write(wake_, &one, sizeof one);
    thread_.join();
    close(wake_);
  }
  const PublicKey& key() const { return id_.public_key(); }
  std::map<lan::Key, lan::DiscoveredPeer> peers() {
    std::lock_guard<std::mutex> lock(m_);
    return engine_->peers();
  }
  lan::EngineCounters counters() {
    std::lock_guard<std::mutex> lock(m_);
    return engine_->counters();
  }

 private:
  void add_interface(int k) {
    const std::string dev = "eth" + std::to_string(k);
    std::vector<in_addr> v4;
    std::vector<in6_addr> v6;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) == 0) {
      for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || dev != i->ifa_name) continue;
        if (i->ifa_addr->sa_family == AF_INET)
          v4.push_back(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr);
        if (i->ifa_addr->sa_family == AF_INET6)
          v6.push_back(reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr);
      }
      freeifaddrs(list);
    }
    engine_->interface_up(LanLab::interface_index(ns_, k), v4, v6, MdnsEngine::Clock::now());
  }
  void flush() {
    for (const lan::Outgoing& o : engine_->take_outgoing()) {
      std::string why;
      if (o.multicast)
        socket_.send_multicast(o.family, o.interface_index, o.bytes, &why);
      else
        socket_.send_to(o.to, o.bytes, &why);
    }
    engine_->take_events();
  }
  void run() {
    while (!stop_) {
      int timeout_ms = 1000;
      {
        std::lock_guard<std::mutex> lock(m_);
        const auto now = MdnsEngine::Clock::now();
        engine_->tick(now);
        flush();
        const auto next = engine_->next_timer();
        if (next != MdnsEngine::Clock::time_point::max())
          timeout_ms = static_cast<int>(std::clamp<int64_t>(
              std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1, 0, 1000));
      }
      pollfd p[3] = {{socket_.fd4(), POLLIN, 0}, {socket_.fd6(), POLLIN, 0}, {wake_, POLLIN, 0}};
      poll(p, 3, timeout_ms);
      std::lock_guard<std::mutex> lock(m_);
      for (int fd : {socket_.fd4(), socket_.fd6()}) {
        if (fd < 0) continue;
        lan::Datagram d;
        while (socket_.receive(fd, d))
          engine_->receive(d, MdnsEngine::Clock::now());
      }
      flush();
    }
  }

  std::string ns_;
  Identity id_ = Identity::generate();
  std::unique_ptr<MdnsEngine> engine_;
  lan::MdnsSocket socket_;
  std::mutex m_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int wake_ = -1;
};

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
    const auto t0 = std::chrono::steady_clock::now();
    auto b1 = std::make_unique<LabBeacon>(h1, 1, v4, !v4);
    auto b2 = std::make_unique<LabBeacon>(h2, 1, v4, !v4);
    auto b3 = std::make_unique<LabBeacon>(h3, 1, v4, !v4);
    auto bi = std::make_unique<LabBeacon>(isolated, 1, v4, !v4);
    auto bb = std::make_unique<LabBeacon>(both, 2, v4, !v4);
    ASSERT_TRUE(wait_for([&] {
      return b1->peers().size() == 3 && b2->peers().size() == 3 && b3->peers().size() == 3 &&
             bi->peers().size() == 1 && bb->peers().size() == 4;
    })) << "h1 sees "
        << b1->peers().size() << ", isolated sees " << bi->peers().size() << ", dual-homed sees "
        << bb->peers().size();
    std::printf("[ figures  ] %s: 5 beacons started to all discovered in %.1f ms\n", v4 ? "IPv4" : "IPv6",
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
