// The NAT lab: an "internet" in a network namespace with coturn, and sites behind NAT routers (nftables in
// router namespaces), all real kernel networking and nothing in the root namespace. See README.md here.
//
// Addresses:
//   internet namespace, bridge br0, 203.0.113.0/24:
//     203.0.113.1  coturn, static long-term user          (turn_server(), UDP and TCP 3478)
//     203.0.113.2  coturn, REST API time-limited creds     (turn_rest_server(), UDP and TCP 3478)
//     203.0.113.5-9 spare "internet hosts" for test servers (internet_host_ip(k))
//     203.0.113.(10+n) WAN of site n's router              (Site::wan_ip())
//     203.0.113.(100+k) public peers of kNone sites         (Site::peer_ip(i))
//     default route to a black-hole neighbour (192.0.2.254 on a veth stub) so that coturn never gets
//     ENETUNREACH; the internet namespace does not forward.
//   site n behind a router: LAN 100.64.n.0/24 on bridge br0 of the router namespace, router 100.64.n.1,
//     peers 100.64.n.(10+i) with default route via the router; ip_forward is on in router namespaces only.
// Interfaces: router "wan0" (its veth end in the internet namespace is "s<n>"), peers "eth0".
// IPv6 is disabled in every lab namespace (LabOptions::disable_ipv6), so ICE sees IPv4 candidates only.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "netlab/coturn.hpp"
#include "netlab/nat.hpp"
#include "netlab/netns.hpp"
#include "netlab/socket.hpp"
#include "netlab/stun.hpp"

namespace peerlink::netlab {

// True when this process can build a lab: running as root, with `ip`, `nft` and `turnserver` installed.
// Otherwise false with the reason in *why, for GTEST_SKIP() << why.
bool have_root_and_tools(std::string* why);

// A site: peers on a LAN behind one router, or (kNone) peers with public addresses on the internet segment.
// A plain value: the Lab that made it must outlive its use.
class Site {
 public:
  int index() const { return index_; }  // n: LAN 100.64.n.0/24, WAN 203.0.113.(10+n)
  NatType nat() const { return nat_; }
  bool has_router() const { return nat_ != NatType::kNone; }
  int peer_count() const { return static_cast<int>(peer_ns_.size()); }
  const std::string& peer_ns(int i) const { return peer_ns_.at(static_cast<size_t>(i)); }
  const std::string& peer_ip(int i) const { return peer_ip_.at(static_cast<size_t>(i)); }
  // Namespace of the router; "" for kNone.
  const std::string& router_ns() const { return router_ns_; }
  // Router's address on the internet; for kNone the first peer's (public) address.
  const std::string& wan_ip() const { return wan_ip_; }
  // The address the internet sees for peer i: wan_ip() behind a router, the peer's own for kNone.
  const std::string& public_ip(int i) const { return has_router() ? wan_ip_ : peer_ip(i); }
  // Router's LAN address (the peers' gateway); "" for kNone.
  const std::string& lan_gateway() const { return lan_gateway_; }

 private:
  friend class Lab;
  int index_ = 0;
  NatType nat_ = NatType::kNone;
  std::string router_ns_;
  std::string wan_ip_;
  std::string lan_gateway_;
  std::vector<std::string> peer_ns_;
  std::vector<std::string> peer_ip_;
};

struct LabOptions {
  bool start_turn = true;  // start both coturn servers in the constructor
  std::string turn_realm = "peerlink.test";
  std::string turn_user = "peerlink";
  std::string turn_password = "peerlink-password";
  std::string turn_secret = "peerlink-rest-secret";  // static-auth-secret of the REST server
  bool disable_ipv6 = true;
  bool keep_work_dir = false;  // keep configs and coturn logs (also kept when PEERLINK_NETLAB_KEEP is set)
};

// Lifetime rules: create the Lab on a thread that outlives it (coturn gets SIGKILL when the thread that
// started it exits, so a crashed test leaves no server behind), and destroy Hosts, sockets and threads that
// live in its namespaces before the Lab (declare the Lab first): a deleted namespace disappears from
// `ip netns list` at once, but its interfaces live on until the last socket in it is closed.
class Lab {
 public:
  static constexpr uint16_t kTurnPort = 3478;

  // Builds the internet namespace and (by default) starts coturn. Throws std::runtime_error with the failing
  // command and its output; whatever was built is torn down before it throws.
  explicit Lab(LabOptions options = {});
  // Stops coturn (only the PIDs started here) and deletes every namespace of this lab, also after a failed
  // test. Never throws.
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  // "plnl<pid>x<counter>": every namespace of this lab starts with it. Unique per process and instance, so
  // parallel ctest processes never collide.
  const std::string& prefix() const { return prefix_; }
  const std::string& internet_ns() const { return internet_ns_; }
  // Every namespace created so far, in creation order.
  const std::vector<std::string>& namespaces() const { return namespaces_; }
  const std::string& work_dir() const { return work_dir_; }

  // Adds site n = (number of sites so far) + 1 with `peers` peers (1..100). For kFullCone the first peer
  // (peer 0) is the "DMZ" host that every unsolicited inbound packet goes to: a 1:1, port-preserving full
  // cone. Further peers of a full-cone site share the WAN address with port-preserving SNAT; their
  // replies work, but unsolicited inbound to their mapped ports goes to peer 0, so for them the site acts as
  // port-restricted (at best). Use one peer per full-cone site.
  Site add_site(NatType nat, int peers = 1);
  const std::vector<Site>& sites() const { return sites_; }

  // A NAT rebinding on the site's router: every current mapping of a LAN socket gets a new external port,
  // and the old one stops working. Existing conntrack entries are deleted (ctnetlink, like `conntrack -F`);
  // port-preserving NATs (full cone, port-restricted, TCP of udp-blocked) also get a per-socket SNAT rule to
  // a fresh port (61000 and up) so that the socket keeps one endpoint-independent mapping, as a real NAT's
  // rebinding does; symmetric NATs just pick new random ports. Sockets that had no mapping keep
  // port-preserving behaviour. Throws std::invalid_argument for kNone.
  void flush_nat(const Site& site);

  // Random loss of `percent` % on the site's uplink, each direction (router forward chain; for kNone the
  // peers' input and output). 0 removes it.
  void set_loss(const Site& site, int percent);

  // The router's current nftables script and conntrack table (for diagnostics and checks).
  std::string nat_ruleset(const Site& site) const;
  std::vector<ConntrackEntry> conntrack(const Site& site) const;

  // coturn with the static long-term user and coturn with REST API credentials (both UDP+TCP 3478).
  Endpoint turn_server() const { return Endpoint{"203.0.113.1", kTurnPort}; }
  Endpoint turn_rest_server() const { return Endpoint{"203.0.113.2", kTurnPort}; }
  const std::string& turn_realm() const { return options_.turn_realm; }
  stun::Credentials turn_credentials() const { return {options_.turn_user, options_.turn_password}; }
  const std::string& turn_secret() const { return options_.turn_secret; }
  // Time-limited credentials for turn_rest_server(), valid for `ttl` from now (negative: already expired).
  stun::Credentials turn_rest_credentials(const std::string& user,
                                          std::chrono::seconds ttl = std::chrono::hours(1)) const;
  // Stop / start both coturn servers (start waits until they answer STUN).
  void stop_turn();
  void start_turn();
  bool turn_running() const { return turn_->running() && turn_rest_->running(); }
  TurnServer& turn() { return *turn_; }
  TurnServer& turn_rest() { return *turn_rest_; }

  // Spare addresses of the internet namespace, k in [0, 5): 203.0.113.(5+k). Bind test servers to them
  // (inside a NetnsScope(internet_ns())).
  std::string internet_host_ip(int k) const;

 private:
  struct SiteState;

  void build_internet();
  void add_netns(const std::string& name);
  void ip_batch(const std::string& ns, const std::string& commands);
  void wait_links_up(const std::string& ns, const std::vector<std::string>& links);
  void load_rules(const Site& site);
  void teardown() noexcept;

  LabOptions options_;
  std::string prefix_;
  std::string internet_ns_;
  std::string work_dir_;
  std::vector<std::string> namespaces_;
  std::vector<Site> sites_;
  std::vector<std::unique_ptr<SiteState>> state_;
  std::unique_ptr<TurnServer> turn_;
  std::unique_ptr<TurnServer> turn_rest_;
  int public_hosts_ = 0;
  uint16_t next_remap_port_ = 61000;
};

}  // namespace peerlink::netlab
