// The LAN beacon's mDNS sockets on real LANs in namespaces: a datagram to the group reaches every host on
// that LAN (and only there) with the interface it came in on and hop limit 255, over IPv4 and IPv6
// (link-local, scope id kept); a unicast answer to its source comes back.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "dns_message.hpp"
#include "lan/lan_lab.hpp"
#include "mdns_socket.hpp"
#include "netlab/netns.hpp"

namespace peerlink::test {
namespace {

using lan::Datagram;
using lan::MdnsSocket;

#define LAN_REQUIRE_LAB()                                \
  do {                                                   \
    std::string why_;                                    \
    if (!can_build_lan_lab(&why_)) GTEST_SKIP() << why_; \
  } while (0)

// A socket made inside host `ns` (it stays there), joined on each of the host's interfaces.
std::unique_ptr<MdnsSocket> socket_in(const std::string& ns, int interfaces) {
  netlab::NetnsScope scope(ns);
  auto s = std::make_unique<MdnsSocket>();
  std::string why;
  if (!s->open(true, true, lan::kMdnsPort, &why)) throw std::runtime_error(ns + ": " + why);
  for (int k = 0; k < interfaces; ++k)
    if (!s->join(LanLab::interface_index(ns, k), &why)) throw std::runtime_error(ns + ": " + why);
  return s;
}

// The next datagram of `family` within `timeout`.
std::optional<Datagram> next(MdnsSocket& s, int family, std::chrono::milliseconds timeout) {
  const int fd = family == AF_INET ? s.fd4() : s.fd6();
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Datagram d;
    if (s.receive(fd, d)) return d;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, static_cast<int>(left.count()));
  }
}

std::vector<uint8_t> query() {
  lan::dns::Message m;
  m.questions.push_back({lan::dns::name_of("_peerlink-test._udp.local"),
                         static_cast<uint16_t>(lan::dns::Type::kPtr), lan::dns::kClassIn, false});
  return *lan::dns::serialize(m);
}

TEST(MdnsSocketLab, GroupReachesItsLanOnlyWithInterfaceAndHopLimit_UnicastAnswerComesBack) {
  LAN_REQUIRE_LAB();
  LanLab lab;
  const int lan1 = lab.add_lan(), lan2 = lab.add_lan();
  const std::string h1 = lab.add_host({lan1}), h2 = lab.add_host({lan1}), h3 = lab.add_host({lan1});
  const std::string isolated = lab.add_host({lan2});
  const std::string both = lab.add_host({lan2, lan1});  // eth0 on the isolated LAN, eth1 on the first
  auto s1 = socket_in(h1, 1), s2 = socket_in(h2, 1), s3 = socket_in(h3, 1);
  auto s_isolated = socket_in(isolated, 1), s_both = socket_in(both, 2);
  const std::vector<uint8_t> q = query();

  for (int family : {AF_INET, AF_INET6}) {
    SCOPED_TRACE(family == AF_INET ? "IPv4" : "IPv6");
    std::string why;
    ASSERT_TRUE(s1->send_multicast(family, LanLab::interface_index(h1), q, &why)) << why;
    std::optional<Datagram> got2;
    struct Expect {
      MdnsSocket* socket;
      std::string ns;
      int eth;
    };
    for (const Expect& e :
         {Expect{s2.get(), h2, 0}, Expect{s3.get(), h3, 0}, Expect{s_both.get(), both, 1}}) {
      SCOPED_TRACE(e.ns);
      std::optional<Datagram> d = next(*e.socket, family, std::chrono::seconds(3));
      ASSERT_TRUE(d) << "nothing arrived";
      EXPECT_EQ(d->bytes, q);
      EXPECT_TRUE(d->multicast);
      EXPECT_EQ(d->hop_limit, 255);
      EXPECT_EQ(d->interface_index, LanLab::interface_index(e.ns, e.eth));
      if (family == AF_INET) {
        EXPECT_EQ(d->source.str(), lab.ipv4(h1) + ":5353");
      } else {
        const auto& a = reinterpret_cast<const sockaddr_in6&>(d->source.storage);
        EXPECT_TRUE(IN6_IS_ADDR_LINKLOCAL(&a.sin6_addr)) << d->source.str();
        EXPECT_EQ(static_cast<int>(a.sin6_scope_id), d->interface_index);
      }
      if (e.ns == h2) got2 = d;
    }
    // The other LAN hears nothing (the dual-homed host heard it on eth1 only, above).
    EXPECT_FALSE(next(*s_isolated, family, std::chrono::milliseconds(300)));
    // A unicast answer from h2 to the source comes back to h1, not as multicast.
    ASSERT_TRUE(got2);
    const std::vector<uint8_t> answer = {1, 2, 3};
    ASSERT_TRUE(s2->send_to(got2->source, answer, &why)) << why;
    std::optional<Datagram> back;
    for (int i = 0; i < 4 && !(back && back->bytes == answer); ++i)
      back = next(*s1, family, std::chrono::seconds(3));  // skips h1's own looped-back query
    ASSERT_TRUE(back && back->bytes == answer);
    EXPECT_FALSE(back->multicast);
    EXPECT_EQ(back->hop_limit, 255);
    EXPECT_EQ(back->interface_index, LanLab::interface_index(h1));
    // Nothing else is pending on the isolated host or the dual-homed host's other interface.
    EXPECT_FALSE(next(*s_isolated, family, std::chrono::milliseconds(50)));
    EXPECT_FALSE(next(*s_both, family, std::chrono::milliseconds(50)));
  }
}

}  // namespace
}  // namespace peerlink::test
