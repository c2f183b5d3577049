#include "lan_interfaces.hpp"

#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "peerlink/lan.hpp"

namespace peerlink {

const char* const kDefaultExcludedInterfaces[6] = {"docker", "veth", "virbr", "tun", "wg", "br-"};

namespace lan {

std::vector<LinkInfo> read_links() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  std::map<std::string, LinkInfo> by_name;
  for (const ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_name) continue;
    LinkInfo& link = by_name[a->ifa_name];
    link.name = a->ifa_name;
    link.flags = a->ifa_flags;
    if (!a->ifa_addr) continue;
    if (a->ifa_addr->sa_family == AF_INET) {
      link.ipv4.push_back(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      link.ipv6.push_back(reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr);
    }
  }
  freeifaddrs(list);
  std::vector<LinkInfo> out;
  for (auto& [name, link] : by_name) {
    link.index = static_cast<int>(if_nametoindex(name.c_str()));
    if (link.index > 0) out.push_back(std::move(link));
  }
  return out;
}

bool serves(const LinkInfo& link, const std::vector<std::string>& allow,
            const std::vector<std::string>& deny) {
  if (!(link.flags & IFF_UP) || !(link.flags & IFF_MULTICAST) || (link.flags & IFF_LOOPBACK) ||
      (link.flags & IFF_POINTOPOINT))
    return false;
  if (std::find(deny.begin(), deny.end(), link.name) != deny.end()) return false;
  if (!allow.empty()) return std::find(allow.begin(), allow.end(), link.name) != allow.end();
  for (const char* prefix : kDefaultExcludedInterfaces)
    if (link.name.compare(0, std::strlen(prefix), prefix) == 0) return false;
  return true;
}

NetlinkWatch::NetlinkWatch() {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) return;
  sockaddr_nl a{};
  a.nl_family = AF_NETLINK;
  a.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

NetlinkWatch::~NetlinkWatch() {
  if (fd_ >= 0) close(fd_);
}

bool NetlinkWatch::drain() {
  bool changed = false;
  alignas(nlmsghdr) char buffer[16384];
  for (;;) {
    const ssize_t n = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0) {
      // ENOBUFS: the kernel dropped notifications; something changed.
      if (errno == ENOBUFS) changed = true;
      if (errno == EINTR || errno == ENOBUFS) continue;
      return changed;
    }
    // The messages one after another, each aligned (NLMSG_OK/NEXT without their mixed-sign arithmetic).
    const size_t size = static_cast<size_t>(n);
    for (size_t offset = 0; offset + sizeof(nlmsghdr) <= size;) {
      nlmsghdr h;
      std::memcpy(&h, buffer + offset, sizeof h);
      if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > size - offset) break;
      offset += NLMSG_ALIGN(h.nlmsg_len);
      switch (h.nlmsg_type) {
        case RTM_NEWLINK:
        case RTM_DELLINK:
        case RTM_NEWADDR:
        case RTM_DELADDR:
          changed = true;
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace lan
}  // namespace peerlink
