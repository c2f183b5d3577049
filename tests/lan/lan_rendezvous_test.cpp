// The rendezvous datagrams (src/lan_beacon/lan_rendezvous.hpp): a blob sealed for a peer opens there and
// nowhere else; altered, reflected, replayed or wrongly keyed datagrams are refused with the reason. The
// beacon's options as LanOptions::validate() checks them, and its choice of interfaces.
#include <gtest/gtest.h>
#include <net/if.h>

#include <string>
#include <vector>

#include "lan_interfaces.hpp"
#include "lan_rendezvous.hpp"
#include "peerlink/lan.hpp"

namespace peerlink::lan {
namespace {

using Refusal = RendezvousCrypto::Refusal;

std::vector<uint8_t> bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

TEST(LanRendezvous, SealedForAPeer_OpensThereWithTheSenderKey) {
  const Identity alice = Identity::generate(), bob = Identity::generate();
  RendezvousCrypto a(alice, {}), b(bob, {});
  const std::vector<uint8_t> blob = bytes("offer: ice credentials and candidates");
  const auto sealed = a.seal(bob.public_key(), blob.data(), blob.size(), 7);
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->size(), kRendezvousHeader + blob.size() + kRendezvousTag);
  EXPECT_TRUE(looks_like_rendezvous(sealed->data(), sealed->size()));
  Refusal why = Refusal::kMalformed;
  const auto opened = b.open(sealed->data(), sealed->size(), &why);
  ASSERT_TRUE(opened);
  EXPECT_EQ(why, Refusal::kNone);
  EXPECT_EQ(opened->sender, alice.public_key());
  EXPECT_EQ(opened->counter, 7u);
  EXPECT_EQ(opened->blob, blob);
  // And back, under the same derived key.
  const auto reply = b.seal(alice.public_key(), blob.data(), 3, 1);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(a.open(reply->data(), reply->size(), nullptr));
}

TEST(LanRendezvous, AlteredReflectedReplayedOrForeign_Refused) {
  const Identity alice = Identity::generate(), bob = Identity::generate(), eve = Identity::generate();
  RendezvousCrypto a(alice, {}), b(bob, {}), e(eve, {});
  const std::vector<uint8_t> blob = bytes("answer");
  const std::vector<uint8_t> sealed = *a.seal(bob.public_key(), blob.data(), blob.size(), 100);
  Refusal why = Refusal::kNone;
  // Every single byte altered: refused (the header's fields, the blob, the tag).
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::vector<uint8_t> altered = sealed;
    altered[i] ^= 0x01;
    EXPECT_FALSE(b.open(altered.data(), altered.size(), &why)) << "byte " << i;
    EXPECT_NE(why, Refusal::kNone);
  }
  // Eve cannot read or re-address it; a datagram sent back to its sender is refused.
  EXPECT_FALSE(e.open(sealed.data(), sealed.size(), &why));
  EXPECT_EQ(why, Refusal::kNotForUs);
  EXPECT_FALSE(a.open(sealed.data(), sealed.size(), &why));
  EXPECT_EQ(why, Refusal::kNotForUs);
  // Eve claiming to be alice: her tag is under another key agreement.
  std::vector<uint8_t> forged = *e.seal(bob.public_key(), blob.data(), blob.size(), 200);
  std::copy(alice.public_key().begin(), alice.public_key().end(), forged.begin() + 5);
  EXPECT_FALSE(b.open(forged.data(), forged.size(), &why));
  EXPECT_EQ(why, Refusal::kBadTag);
  // Truncated, empty, oversized length: malformed.
  for (size_t n : {size_t{0}, size_t{4}, kRendezvousHeader, sealed.size() - 1}) {
    EXPECT_FALSE(b.open(sealed.data(), n, &why));
    EXPECT_EQ(why, Refusal::kMalformed) << n;
  }
  // Genuine once; the same again, or an older one, is a replay.
  EXPECT_TRUE(b.open(sealed.data(), sealed.size(), &why));
  EXPECT_FALSE(b.open(sealed.data(), sealed.size(), &why));
  EXPECT_EQ(why, Refusal::kReplayed);
  const std::vector<uint8_t> older = *a.seal(bob.public_key(), blob.data(), blob.size(), 99);
  EXPECT_FALSE(b.open(older.data(), older.size(), &why));
  EXPECT_EQ(why, Refusal::kReplayed);
  const std::vector<uint8_t> newer = *a.seal(bob.public_key(), blob.data(), blob.size(), 101);
  EXPECT_TRUE(b.open(newer.data(), newer.size(), &why));
}

TEST(LanRendezvous, NetworkKey_OnlyHoldersExchangeBlobs) {
  const Identity alice = Identity::generate(), bob = Identity::generate();
  const std::vector<uint8_t> key = bytes("the group's secret, 32 bytes....");
  RendezvousCrypto a(alice, key), b(bob, key), b_without(bob, {}),
      b_other(bob, bytes("another secret of 32 bytes......"));
  const std::vector<uint8_t> blob = bytes("offer");
  const std::vector<uint8_t> sealed = *a.seal(bob.public_key(), blob.data(), blob.size(), 1);
  Refusal why = Refusal::kNone;
  EXPECT_FALSE(b_without.open(sealed.data(), sealed.size(), &why));
  EXPECT_EQ(why, Refusal::kBadTag);
  EXPECT_FALSE(b_other.open(sealed.data(), sealed.size(), &why));
  EXPECT_EQ(why, Refusal::kBadTag);
  EXPECT_TRUE(b.open(sealed.data(), sealed.size(), &why));
}

TEST(LanOptions, Validate_SaysWhatIsWrong) {
  auto error_of = [](const LanOptions& o) {
    Result<void> r = o.validate();
    return r ? std::string() : r.error().message;
  };
  LanOptions o;
  EXPECT_NE(error_of(o).find("identity is required"), std::string::npos) << error_of(o);
  o.identity = Identity::generate();
  EXPECT_EQ(error_of(o), "");
  auto with = [&](auto change) {
    LanOptions c = o;
    change(c);
    return error_of(c);
  };
  EXPECT_NE(with([](LanOptions& c) { c.service = "has space"; }).find("service"), std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.service = "sixteen-letters-"; }).find("service"), std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.display_name = std::string(41, 'x'); }).find("display_name"),
            std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.display_name = "bad\xff"; }).find("UTF-8"), std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.interfaces = {"a/b"}; }).find("interface name"), std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.exclude_interfaces = {""}; }).find("interface name"),
            std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.ipv4 = c.ipv6 = false; }).find("neither"), std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.network_key = "short"; }).find("network_key"), std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.aliases = {*PeerId::parse("lan:pl1-x")}; }).find("alias"),
            std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.ttl_seconds = 1; }).find("ttl"), std::string::npos);
  EXPECT_NE(with([](LanOptions& c) { c.mdns_port = 0; }).find("mdns_port"), std::string::npos);
  // The responder's names, both ways.
  for (LanResponder r : {LanResponder::kAuto, LanResponder::kOwn, LanResponder::kAvahi})
    EXPECT_EQ(parse_lan_responder(to_string(r)), r);
  EXPECT_FALSE(parse_lan_responder("bonjour"));
  EXPECT_FALSE(parse_lan_responder(""));
  // The constructor throws the same.
  try {
    LanBeacon beacon(LanOptions{});
    ADD_FAILURE() << "no exception";
  } catch (const Exception& e) {
    EXPECT_EQ(e.error().code, ErrorCode::kInvalidConfig);
  }
}

// Which interfaces the beacon serves: by default the up, multicast-capable ones but loopback,
// point-to-point links and containers' and tunnels' names; an allow list names exactly those; a deny list
// always wins.
TEST(LanInterfaces, DefaultAllowAndDenyRules) {
  auto link = [](const std::string& name, unsigned flags = IFF_UP | IFF_MULTICAST) {
    LinkInfo l;
    l.name = name;
    l.index = 1;
    l.flags = flags;
    return l;
  };
  EXPECT_TRUE(serves(link("eth0"), {}, {}));
  EXPECT_TRUE(serves(link("wlp2s0"), {}, {}));
  EXPECT_FALSE(serves(link("eth1", IFF_MULTICAST), {}, {}));  // down
  EXPECT_FALSE(serves(link("eth2", IFF_UP), {}, {}));         // no multicast
  EXPECT_FALSE(serves(link("lo", IFF_UP | IFF_MULTICAST | IFF_LOOPBACK), {}, {}));
  EXPECT_FALSE(serves(link("ppp0", IFF_UP | IFF_MULTICAST | IFF_POINTOPOINT), {}, {}));
  for (const char* name : {"docker0", "veth1a2b", "virbr0", "tun0", "wg0", "br-3f2a"})
    EXPECT_FALSE(serves(link(name), {}, {})) << name;
  EXPECT_TRUE(serves(link("docker0"), {"docker0"}, {}));   // named in the allow list: served
  EXPECT_FALSE(serves(link("eth0"), {"eth1"}, {}));        // not named
  EXPECT_FALSE(serves(link("eth0"), {"eth0"}, {"eth0"}));  // the deny list wins
  EXPECT_FALSE(serves(link("eth0"), {}, {"eth0"}));
  EXPECT_FALSE(serves(link("lo", IFF_UP | IFF_MULTICAST | IFF_LOOPBACK), {"lo"}, {}));  // never loopback
}

}  // namespace
}  // namespace peerlink::lan
