// The network interfaces the LAN beacon serves: read from the kernel (getifaddrs), chosen by the rules of
// LanOptions (defaults, allow and deny lists), and watched for changes through a netlink socket.
#pragma once

#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

namespace peerlink::lan {

struct LinkInfo {
  std::string name;
  int index = 0;
  unsigned flags = 0;  // IFF_*
  std::vector<in_addr> ipv4;
  std::vector<in6_addr> ipv6;
};

// Whether two lists of addresses (in_addr or in6_addr) are the same, in the same order.
template <typename T>
bool same_addresses(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Every interface with its addresses, by index. Empty when the kernel cannot be asked.
std::vector<LinkInfo> read_links();

// Whether the beacon serves `link`: up, multicast-capable, not loopback or point-to-point; then, with an
// allow list, named in it, otherwise not matching a default-excluded prefix; never in the deny list.
bool serves(const LinkInfo& link, const std::vector<std::string>& allow,
            const std::vector<std::string>& deny);

// A netlink socket subscribed to link and address changes (IPv4 and IPv6). Non-blocking.
class NetlinkWatch {
 public:
  NetlinkWatch();  // fd() is -1 when the kernel refuses (the beacon then does not follow changes)
  ~NetlinkWatch();
  NetlinkWatch(const NetlinkWatch&) = delete;
  NetlinkWatch& operator=(const NetlinkWatch&) = delete;
  int fd() const { return fd_; }
  // Reads everything waiting; true if any of it was a link or address change.
  bool drain();

 private:
  int fd_ = -1;
};

}  // namespace peerlink::lan
