#include "lan/lan_lab.hpp"

#include <net/if.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "netlab/netns.hpp"

namespace peerlink::test {
namespace {

using netlab::run_checked;
using netlab::run_command;

std::atomic<int> g_labs{0};

using netlab::set_sysctl;

// Until eth<k> is up at both ends and its IPv6 link-local address is usable.
void wait_usable(const std::string& ns, const std::string& dev) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    const std::string link = run_checked({"ip", "-n", ns, "-o", "link", "show", "dev", dev});
    const std::string addr =
        run_checked({"ip", "-n", ns, "-6", "-o", "addr", "show", "dev", dev, "scope", "link"});
    if (link.find(" state UP ") != std::string::npos && addr.find("fe80") != std::string::npos &&
        addr.find("tentative") == std::string::npos)
      return;
    if (std::chrono::steady_clock::now() > give_up)
      throw std::runtime_error("lan lab: " + dev + " in " + ns + " not usable after 5 s: " + link + addr);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

bool can_build_lan_lab(std::string* why) {
  std::string reason;
  if (geteuid() != 0)
    reason = "LAN lab tests need root (network namespaces); running as uid " + std::to_string(geteuid());
  else if (netlab::find_executable("ip").empty())
    reason = "LAN lab tests need ip (Debian package iproute2)";
  else if (access("/proc/thread-self/ns/net", R_OK) != 0)
    reason = "LAN lab tests need /proc/thread-self/ns/net (network namespace support)";
  if (why) *why = reason;
  return reason.empty();
}

LanLab::LanLab() : prefix_("pllan" + std::to_string(getpid()) + "x" + std::to_string(++g_labs)) {}

LanLab::~LanLab() {
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    netlab::CommandResult r = run_command({"ip", "netns", "delete", *it});
    if (!r.ok() && netlab::netns_exists(*it))
      std::fprintf(stderr, "lan lab: could not delete namespace %s: %s\n", it->c_str(), r.output.c_str());
  }
}

void LanLab::add_netns(const std::string& name) {
  run_checked({"ip", "netns", "add", name});
  namespaces_.push_back(name);
  for (const char* key : {"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
                          "net/bridge/bridge-nf-call-arptables"})
    set_sysctl(name, key, "0", /*optional=*/true);
  // Link-local IPv6 addresses usable at once: no duplicate address detection on these private links.
  set_sysctl(name, "net/ipv6/conf/all/accept_dad", "0");
  set_sysctl(name, "net/ipv6/conf/default/accept_dad", "0");
  run_checked({"ip", "-n", name, "link", "set", "lo", "up"});
}

int LanLab::add_lan() {
  const int lan = ++lans_;
  const std::string sw = prefix_ + "-sw" + std::to_string(lan);
  add_netns(sw);
  run_checked({"ip", "-n", sw, "-batch", "-"}, "",
              "link add br0 type bridge mcast_snooping 0\n"
              "link set br0 up\n");
  return lan;
}

std::string LanLab::add_host(const std::vector<int>& lans) {
  Host h;
  h.number = static_cast<int>(hosts_.size()) + 1;
  h.ns = prefix_ + "-h" + std::to_string(h.number);
  add_netns(h.ns);
  for (int lan : lans)
    attach(h, lan);
  for (size_t k = 0; k < lans.size(); ++k)
    wait_usable(h.ns, "eth" + std::to_string(k));
  hosts_.push_back(h);
  return h.ns;
}

int LanLab::add_link(const std::string& ns, int lan) {
  for (Host& h : hosts_) {
    if (h.ns != ns) continue;
    const int eth = attach(h, lan);
    wait_usable(h.ns, "eth" + std::to_string(eth));
    return eth;
  }
  throw std::runtime_error("lan lab: no host " + ns);
}

int LanLab::attach(Host& h, int lan) {
  if (lan < 1 || lan > lans_) throw std::runtime_error("lan lab: no LAN " + std::to_string(lan));
  const size_t k = h.lans.size();
  const std::string sw = prefix_ + "-sw" + std::to_string(lan);
  const std::string port = "p" + std::to_string(h.number) + "e" + std::to_string(k);
  const std::string eth = "eth" + std::to_string(k);
  run_checked({"ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", eth, "netns", h.ns});
  run_checked({"ip", "-n", sw, "-batch", "-"}, "",
              "link set " + port + " master br0\nlink set " + port + " up\n");
  run_checked({"ip", "-n", h.ns, "-batch", "-"}, "",
              "addr add 100.64." + std::to_string(lan) + "." + std::to_string(10 + h.number) + "/24 dev " +
                  eth + "\nlink set " + eth + " up\n");
  h.lans.push_back(lan);
  return static_cast<int>(k);
}

std::string LanLab::ipv4(const std::string& ns, int eth) const {
  for (const Host& h : hosts_)
    if (h.ns == ns)
      return "100.64." + std::to_string(h.lans.at(static_cast<size_t>(eth))) + "." +
             std::to_string(10 + h.number);
  throw std::runtime_error("lan lab: no host " + ns);
}

int LanLab::interface_index(const std::string& ns, int eth) {
  const std::string dev = "eth" + std::to_string(eth);
  netlab::NetnsScope scope(ns);  // if_nametoindex asks the calling thread's namespace
  const unsigned index = if_nametoindex(dev.c_str());
  if (index == 0) throw std::runtime_error("lan lab: no " + dev + " in " + ns);
  return static_cast<int>(index);
}

}  // namespace peerlink::test
