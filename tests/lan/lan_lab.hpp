// LANs in network namespaces for the LAN beacon's tests (../shared/NETWORK-SAFETY.md): each LAN is a bridge
// (IGMP/MLD snooping off) inside its own switch namespace, each host a namespace whose eth<k> is a veth to
// the k-th LAN it is on. Addresses: 100.64.<lan>.<10 + host>/24 and the kernel's IPv6 link-local ones
// (duplicate address detection off, so they are usable at once). Nothing is created in the root namespace;
// everything is deleted by the destructor, also when a test fails.
#pragma once

#include <string>
#include <vector>

namespace peerlink::test {

class LanLab {
 public:
  LanLab();
  ~LanLab();
  LanLab(const LanLab&) = delete;
  LanLab& operator=(const LanLab&) = delete;

  // A new LAN (a switch); returns its number, from 1.
  int add_lan();
  // A new host on the given LANs (eth0 on the first, eth1 on the second, ...); returns its namespace.
  std::string add_host(const std::vector<int>& lans);
  // Plugs host `ns` into one more LAN while it runs (eth<k> for the next k); returns k.
  int add_link(const std::string& ns, int lan);

  // The IPv4 address of host `ns` on its interface `eth`, "100.64.1.11".
  std::string ipv4(const std::string& ns, int eth = 0) const;
  // Interface index of eth<k> inside host `ns`.
  static int interface_index(const std::string& ns, int eth = 0);

 private:
  struct Host {
    std::string ns;
    std::vector<int> lans;
    int number = 0;
  };
  void add_netns(const std::string& name);
  int attach(Host& h, int lan);  // a veth from the LAN's switch into the host: eth<k>
  std::string prefix_;
  std::vector<std::string> namespaces_;
  std::vector<Host> hosts_;
  int lans_ = 0;
};

// Whether LAN lab tests can run (root, iproute2, namespaces), else why not.
bool can_build_lan_lab(std::string* why);

}  // namespace peerlink::test
