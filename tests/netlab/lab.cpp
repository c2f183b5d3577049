#include "netlab/lab.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace peerlink::netlab {
namespace {

constexpr const char* kPrefixStem = "plnl";
constexpr int kMaxSites = 80;
constexpr int kMaxPublicHosts = 150;

std::atomic<int> g_lab_counter{0};

// Whether a process exists and is not a zombie.
bool process_alive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat_file, line)) return true;  // cannot tell: assume alive
  auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

// The pid in a name "<before>plnl<pid>x...", or 0 when the name has another form.
pid_t lab_pid_of(const std::string& name, const std::string& before) {
  const std::string stem = before + kPrefixStem;
  if (name.rfind(stem, 0) != 0) return 0;
  size_t pos = stem.size(), digits = 0;
  while (pos < name.size() && std::isdigit(static_cast<unsigned char>(name[pos]))) {
    ++pos;
    ++digits;
  }
  if (digits == 0 || digits > 9 || pos >= name.size() || name[pos] != 'x') return 0;
  return static_cast<pid_t>(std::stol(name.substr(stem.size(), digits)));
}

// Deletes namespaces "plnl<pid>x..." and work directories left by a lab whose process no longer exists (a
// test killed hard: its coturn died with it). Those of live processes, and names of any other form, are
// never touched.
void sweep_stale_labs() {
  for (const auto& name : list_netns()) {
    const pid_t pid = lab_pid_of(name, "");
    if (pid > 0 && !process_alive(pid)) run_command({"ip", "netns", "delete", name});
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ec)) {
    const pid_t pid = lab_pid_of(entry.path().filename().string(), "peerlink-netlab-");
    if (pid > 0 && !process_alive(pid)) std::filesystem::remove_all(entry.path(), ec);
  }
}

// Name of a public peer's veth end in the internet namespace.
std::string public_port_name(int site, int peer) {
  return "n" + std::to_string(site) + "p" + std::to_string(peer);
}

bool in_subnet24(const std::string& ip, const std::string& gateway) {
  return ip.size() > 0 && gateway.size() > 0 &&
         ip.substr(0, ip.rfind('.')) == gateway.substr(0, gateway.rfind('.'));
}

}  // namespace

struct Lab::SiteState {
  NatRules rules;
  // (protocol, lan ip, lan port) -> index into rules.remaps
  std::map<std::tuple<uint8_t, std::string, uint16_t>, size_t> remap_index;
};

bool have_root_and_tools(std::string* why) {
  std::string reason;
  if (geteuid() != 0) {
    reason =
        "netlab tests need root (network namespaces, nftables); running as uid " + std::to_string(geteuid());
  } else {
    std::string missing;
    for (const char* tool : {"ip", "nft", "turnserver"})
      if (find_executable(tool).empty()) missing += std::string(missing.empty() ? "" : ", ") + tool;
    if (!missing.empty())
      reason = "netlab tests need " + missing + " (Debian packages iproute2, nftables, coturn)";
    else if (access("/proc/thread-self/ns/net", R_OK) != 0)
      reason = "netlab tests need /proc/thread-self/ns/net (network namespace support)";
  }
  if (why) *why = reason;
  return reason.empty();
}

Lab::Lab(LabOptions options) : options_(std::move(options)) {
  if (const char* keep = std::getenv("PEERLINK_NETLAB_KEEP"))
    options_.keep_work_dir = options_.keep_work_dir || *keep;
  prefix_ = std::string(kPrefixStem) + std::to_string(getpid()) + "x" + std::to_string(++g_lab_counter);
  internet_ns_ = prefix_ + "-inet";
  try {
    sweep_stale_labs();
    std::string tmpl =
        (std::filesystem::temp_directory_path() / ("peerlink-netlab-" + prefix_ + "-XXXXXX")).string();
    if (!mkdtemp(&tmpl[0])) throw std::runtime_error("netlab: mkdtemp " + tmpl + " failed");
    work_dir_ = tmpl;
    build_internet();

    TurnServerConfig base;
    base.netns = internet_ns_;
    base.port = kTurnPort;
    base.realm = options_.turn_realm;
    base.work_dir = work_dir_;
    TurnServerConfig stat = base;
    stat.listen_ip = turn_server().ip;
    stat.user = options_.turn_user;
    stat.password = options_.turn_password;
    stat.name = "turn-static";
    TurnServerConfig rest = base;
    rest.listen_ip = turn_rest_server().ip;
    rest.auth_secret = options_.turn_secret;
    rest.name = "turn-rest";
    turn_ = std::make_unique<TurnServer>(stat);
    turn_rest_ = std::make_unique<TurnServer>(rest);
    if (options_.start_turn) start_turn();
  } catch (...) {
    teardown();
    throw;
  }
}

Lab::~Lab() {
  teardown();
}

void Lab::teardown() noexcept {
  try {
    if (turn_) turn_->stop();
    if (turn_rest_) turn_rest_->stop();
  } catch (...) {
  }
  // Peers and routers first, the internet last (deleting a namespace also deletes its veth ends).
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    CommandResult r = run_command({"ip", "netns", "delete", *it});
    if (!r.ok() && netns_exists(*it))
      std::fprintf(stderr, "netlab: could not delete namespace %s: %s\n", it->c_str(), r.output.c_str());
  }
  namespaces_.clear();
  if (!work_dir_.empty()) {
    if (options_.keep_work_dir) {
      std::fprintf(stderr, "netlab: kept %s\n", work_dir_.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(work_dir_, ec);
    }
    work_dir_.clear();
  }
}

void Lab::add_netns(const std::string& name) {
  run_checked({"ip", "netns", "add", name});
  namespaces_.push_back(name);
  if (options_.disable_ipv6) {
    set_sysctl(name, "net/ipv6/conf/all/disable_ipv6", "1");
    set_sysctl(name, "net/ipv6/conf/default/disable_ipv6", "1");
  }
  // With br_netfilter (built into this kernel, on by default in every namespace) bridged frames would pass
  // the IP hooks and conntrack of the namespace: LAN-to-LAN traffic would meet the router's NAT and filter
  // rules. Lab bridges are plain switches.
  for (const char* key : {"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
                          "net/bridge/bridge-nf-call-arptables"})
    set_sysctl(name, key, "0", /*optional=*/true);
}

void Lab::ip_batch(const std::string& ns, const std::string& commands) {
  run_checked({"ip", "-n", ns, "-batch", "-"}, "", commands);
}

void Lab::wait_links_up(const std::string& ns, const std::vector<std::string>& links) {
  // A veth end set up is not usable at once: until the kernel's link watcher has run (it batches, up to a
  // second apart under load) the device has no queueing discipline and silently drops what is sent. The
  // watcher is also what sets the operational state, so wait for "state UP" on every link.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    std::vector<std::string> down;
    for (const auto& link : links) {
      const std::string out = run_checked({"ip", "-n", ns, "-o", "link", "show", "dev", link});
      if (out.find(" state UP ") == std::string::npos) down.push_back(link);
    }
    if (down.empty()) return;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("netlab: link " + down.front() + " in " + ns + " not up after 5 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Lab::build_internet() {
  add_netns(internet_ns_);
  std::string cmds =
      "link set lo up\n"
      "link add br0 type bridge mcast_snooping 0\n"
      "link set br0 up\n"
      "addr add 203.0.113.1/24 dev br0\n"
      "addr add 203.0.113.2/24 dev br0\n";
  for (int k = 0; k < 5; ++k)
    cmds += "addr add " + internet_host_ip(k) + "/24 dev br0\n";
  // Black hole: a veth stub whose far end has no address; the default route's neighbour is a permanent
  // entry with a made-up MAC, so packets to unknown destinations leave quietly instead of ENETUNREACH.
  cmds +=
      "link add bh0 type veth peer name bh1\n"
      "link set bh0 up\n"
      "link set bh1 up\n"
      "addr add 192.0.2.1/24 dev bh0\n"
      "neigh add 192.0.2.254 lladdr 02:00:00:00:00:fe dev bh0 nud permanent\n"
      "route add default via 192.0.2.254 dev bh0\n";
  ip_batch(internet_ns_, cmds);
}

std::string Lab::internet_host_ip(int k) const {
  if (k < 0 || k >= 5) throw std::out_of_range("netlab: internet_host_ip(k) needs 0 <= k < 5");
  return "203.0.113." + std::to_string(5 + k);
}

Site Lab::add_site(NatType nat, int peers) {
  if (peers < 1 || peers > 100) throw std::invalid_argument("netlab: a site has 1..100 peers");
  if (static_cast<int>(sites_.size()) >= kMaxSites) throw std::invalid_argument("netlab: too many sites");
  Site site;
  site.index_ = static_cast<int>(sites_.size()) + 1;
  site.nat_ = nat;
  const std::string n = std::to_string(site.index_);
  auto state = std::make_unique<SiteState>();

  if (nat == NatType::kNone) {
    if (public_hosts_ + peers > kMaxPublicHosts) throw std::invalid_argument("netlab: too many public peers");
    for (int i = 0; i < peers; ++i) {
      const std::string ns = prefix_ + "-s" + n + "p" + std::to_string(i);
      const std::string ip = "203.0.113." + std::to_string(100 + public_hosts_++);
      const std::string port = public_port_name(site.index_, i);
      add_netns(ns);
      ip_batch(ns,
               "link set lo up\n"
               "link add eth0 type veth peer name " +
                   port + " netns " + internet_ns_ + "\n" + "addr add " + ip +
                   "/24 dev eth0\n"
                   "link set eth0 up\n"
                   "route add default via 203.0.113.1\n");
      ip_batch(internet_ns_, "link set " + port + " master br0\nlink set " + port + " up\n");
      wait_links_up(ns, {"eth0"});
      wait_links_up(internet_ns_, {port});
      site.peer_ns_.push_back(ns);
      site.peer_ip_.push_back(ip);
    }
    site.wan_ip_ = site.peer_ip_[0];
  } else {
    site.router_ns_ = prefix_ + "-r" + n;
    site.wan_ip_ = "203.0.113." + std::to_string(10 + site.index_);
    site.lan_gateway_ = "100.64." + n + ".1";
    const std::string port = "s" + n;
    add_netns(site.router_ns_);
    ip_batch(site.router_ns_,
             "link set lo up\n"
             "link add wan0 type veth peer name " +
                 port + " netns " + internet_ns_ + "\n" + "addr add " + site.wan_ip_ +
                 "/24 dev wan0\n"
                 "link set wan0 up\n"
                 "link add br0 type bridge mcast_snooping 0\n"
                 "addr add " +
                 site.lan_gateway_ +
                 "/24 dev br0\n"
                 "link set br0 up\n"
                 "route add default via 203.0.113.1\n");
    ip_batch(internet_ns_, "link set " + port + " master br0\nlink set " + port + " up\n");
    wait_links_up(site.router_ns_, {"wan0"});
    wait_links_up(internet_ns_, {port});
    set_sysctl(site.router_ns_, "net/ipv4/ip_forward", "1");
    for (int i = 0; i < peers; ++i) {
      const std::string ns = prefix_ + "-s" + n + "p" + std::to_string(i);
      const std::string ip = "100.64." + n + "." + std::to_string(10 + i);
      const std::string lan_port = "p" + std::to_string(i);
      add_netns(ns);
      ip_batch(ns,
               "link set lo up\n"
               "link add eth0 type veth peer name " +
                   lan_port + " netns " + site.router_ns_ + "\n" + "addr add " + ip +
                   "/24 dev eth0\n"
                   "link set eth0 up\n"
                   "route add default via " +
                   site.lan_gateway_ + "\n");
      ip_batch(site.router_ns_, "link set " + lan_port + " master br0\nlink set " + lan_port + " up\n");
      wait_links_up(ns, {"eth0"});
      wait_links_up(site.router_ns_, {lan_port});
      site.peer_ns_.push_back(ns);
      site.peer_ip_.push_back(ip);
    }
    state->rules.type = nat;
    state->rules.wan_ip = site.wan_ip_;
    if (nat == NatType::kFullCone) state->rules.dmz_ip = site.peer_ip_[0];
  }
  sites_.push_back(site);
  state_.push_back(std::move(state));
  if (site.has_router()) load_rules(site);
  return site;
}

void Lab::load_rules(const Site& site) {
  run_checked({"nft", "-f", "-"}, site.router_ns(), netlab::nat_ruleset(state_.at(site.index() - 1)->rules));
}

std::string Lab::nat_ruleset(const Site& site) const {
  if (!site.has_router()) return "";
  return netlab::nat_ruleset(state_.at(site.index() - 1)->rules);
}

std::vector<ConntrackEntry> Lab::conntrack(const Site& site) const {
  if (!site.has_router()) return {};
  return read_conntrack(site.router_ns());
}

void Lab::flush_nat(const Site& site) {
  if (!site.has_router()) throw std::invalid_argument("netlab: flush_nat on a site without NAT");
  SiteState& st = *state_.at(site.index() - 1);
  if (st.rules.type != NatType::kSymmetric) {
    // Current mappings of LAN sockets: outbound flows (orig from the LAN, reply to the WAN) and, for full
    // cone, inbound flows DNATed to the LAN.
    std::map<std::tuple<uint8_t, std::string, uint16_t>, uint16_t> current;
    for (const auto& e : read_conntrack(site.router_ns())) {
      if (in_subnet24(e.orig_src, site.lan_gateway()) && e.reply_dst == site.wan_ip())
        current[{e.protocol, e.orig_src, e.orig_sport}] = e.reply_dport;
      else if (in_subnet24(e.reply_src, site.lan_gateway()) && e.orig_dst == site.wan_ip())
        current[{e.protocol, e.reply_src, e.reply_sport}] = e.orig_dport;
    }
    for (const auto& [key, external] : current) {
      auto it = st.remap_index.find(key);
      if (it == st.remap_index.end()) {
        PortRemap m;
        m.protocol = std::get<0>(key);
        m.lan_ip = std::get<1>(key);
        m.lan_port = std::get<2>(key);
        st.rules.remaps.push_back(m);
        it = st.remap_index.emplace(key, st.rules.remaps.size() - 1).first;
      }
      PortRemap& m = st.rules.remaps[it->second];
      m.old_external_port = external;
      uint16_t fresh;
      do {
        fresh = next_remap_port_;
        next_remap_port_ = next_remap_port_ >= 65535 ? 61000 : static_cast<uint16_t>(next_remap_port_ + 1);
      } while (fresh == external);
      m.external_port = fresh;
    }
    load_rules(site);
  }
  // The rules are in place; now forget every mapping so the next packet of each flow is NATed anew.
  flush_conntrack(site.router_ns());
}

void Lab::set_loss(const Site& site, int percent) {
  if (percent < 0 || percent > 100) throw std::invalid_argument("netlab: loss percent must be 0..100");
  if (site.has_router()) {
    state_.at(site.index() - 1)->rules.loss_percent = percent;
    load_rules(site);
  } else {
    // Both ends of each public peer's link: its eth0 (inbound) and its port in the internet (outbound).
    for (int i = 0; i < site.peer_count(); ++i) {
      const std::string port = public_port_name(site.index(), i);
      run_checked({"nft", "-f", "-"}, site.peer_ns(i), loss_ruleset("netlab_loss", "eth0", percent));
      run_checked({"nft", "-f", "-"}, internet_ns_, loss_ruleset("netlab_loss_" + port, port, percent));
    }
  }
}

stun::Credentials Lab::turn_rest_credentials(const std::string& user, std::chrono::seconds ttl) const {
  RestCredentials c = netlab::turn_rest_credentials(options_.turn_secret, user, ttl);
  return {c.username, c.password};
}

void Lab::stop_turn() {
  turn_->stop();
  turn_rest_->stop();
}

void Lab::start_turn() {
  turn_->start();
  turn_rest_->start();
}

}  // namespace peerlink::netlab
