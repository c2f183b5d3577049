// NAT behaviours of lab routers as nftables rulesets, and the router's connection tracking table (read via
// /proc, flushed via ctnetlink, so no conntrack tool is needed).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace peerlink::netlab {

enum class NatType {
  kNone,            // no router: the peer has a public address on the internet segment
  kFullCone,        // snat + dnat: 1:1 port-preserving mapping of the site's first peer, any host may send in
  kPortRestricted,  // masquerade (port-preserving, endpoint-independent mapping) + drop unsolicited inbound
  kSymmetric,       // masquerade fully-random (new port per destination) + drop unsolicited inbound
  kUdpBlocked,      // all forwarded UDP dropped both ways; TCP masqueraded (port-restricted)
};

const char* to_string(NatType type);
std::ostream& operator<<(std::ostream& os, NatType type);  // to_string; also how GoogleTest prints it

// A fixed external port for one LAN socket, installed by a NAT rebinding (see Lab::flush_nat).
struct PortRemap {
  uint8_t protocol = 17;  // 17 UDP, 6 TCP
  std::string lan_ip;
  uint16_t lan_port = 0;
  uint16_t old_external_port = 0;
  uint16_t external_port = 0;
};

struct NatRules {
  NatType type = NatType::kPortRestricted;
  std::string wan_if = "wan0";
  std::string wan_ip;
  std::string dmz_ip;    // full cone: the peer that unsolicited inbound goes to (the site's first peer)
  int loss_percent = 0;  // random drop of forwarded packets, both directions
  std::vector<PortRemap> remaps;
};

// The router's complete ruleset: one nft script that atomically replaces table `ip netlab`.
std::string nat_ruleset(const NatRules& rules);

// Loss on one link direction without a router (public peers): random drop at the ingress of `device`, in
// table `netdev <table>` replaced atomically; percent 0 removes it. Ingress, not output: a drop in the
// output hook fails the sender's sendto() with EPERM, which real loss never does.
std::string loss_ruleset(const std::string& table, const std::string& device, int percent);

struct ConntrackEntry {
  uint8_t protocol = 0;
  std::string orig_src, orig_dst;
  uint16_t orig_sport = 0, orig_dport = 0;
  std::string reply_src, reply_dst;
  uint16_t reply_sport = 0, reply_dport = 0;
};

// The IPv4 UDP and TCP entries of a namespace's conntrack table (/proc/net/nf_conntrack read from inside it).
std::vector<ConntrackEntry> read_conntrack(const std::string& netns);

// Deletes every conntrack entry of a namespace (what `conntrack -F` does, over ctnetlink). Throws on failure.
void flush_conntrack(const std::string& netns);

}  // namespace peerlink::netlab
