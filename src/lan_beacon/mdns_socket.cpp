#include "mdns_socket.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <unistd.h>

#include <cstring>

namespace peerlink::lan {
namespace {

const in_addr kGroup4 = [] {
  in_addr a{};
  inet_pton(AF_INET, "224.0.0.251", &a);
  return a;
}();
const in6_addr kGroup6 = [] {
  in6_addr a{};
  inet_pton(AF_INET6, "ff02::fb", &a);
  return a;
}();

bool fail(std::string* why, const std::string& what) {
  if (why) *why = what + ": " + std::strerror(errno);
  return false;
}

int enable(int fd, int level, int option) {
  const int one = 1;
  return setsockopt(fd, level, option, &one, sizeof one);
}

// A socket on `port`, shared with other responders unless `own` (then a port of its own; 0: ephemeral).
int open_socket(int family, uint16_t port, std::string* why, bool own = false) {
  const int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(why, "socket"), -1;
  const int ttl = 255;
  bool ok = own || (enable(fd, SOL_SOCKET, SO_REUSEADDR) == 0 && enable(fd, SOL_SOCKET, SO_REUSEPORT) == 0);
  if (family == AF_INET) {
    // The interface and TTL of what arrives are asked for before bind, so no datagram comes without them.
    ok = ok && enable(fd, IPPROTO_IP, IP_PKTINFO) == 0 && enable(fd, IPPROTO_IP, IP_RECVTTL) == 0 &&
         setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) == 0 &&
         setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ok = ok && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  } else {
    ok = ok && enable(fd, IPPROTO_IPV6, IPV6_V6ONLY) == 0 &&
         enable(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO) == 0 &&
         enable(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT) == 0 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl) == 0 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) == 0;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    ok = ok && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  if (!ok) {
    fail(why,
         std::string(family == AF_INET ? "IPv4" : "IPv6") + " mDNS socket on port " + std::to_string(port));
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
  return 0;
}

std::string SocketAddress::host() const {
  char text[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(storage).sin_addr, text, sizeof text);
    return text;
  }
  if (family() == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(storage);
    inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text);
    std::string s = text;
    if (a.sin6_scope_id) s += "%" + std::to_string(a.sin6_scope_id);
    return s;
  }
  return "?";
}

std::string SocketAddress::str() const {
  if (family() == AF_INET) return host() + ":" + std::to_string(port());
  if (family() == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
  return "?";
}

SocketAddress SocketAddress::ipv4(const in_addr& address, uint16_t port) {
  SocketAddress s;
  auto& a = reinterpret_cast<sockaddr_in&>(s.storage);
  a.sin_family = AF_INET;
  a.sin_addr = address;
  a.sin_port = htons(port);
  s.length = sizeof a;
  return s;
}

SocketAddress SocketAddress::ipv6(const in6_addr& address, uint16_t port, uint32_t scope_id) {
  SocketAddress s;
  auto& a = reinterpret_cast<sockaddr_in6&>(s.storage);
  a.sin6_family = AF_INET6;
  a.sin6_addr = address;
  a.sin6_port = htons(port);
  a.sin6_scope_id = scope_id;
  s.length = sizeof a;
  return s;
}

bool MdnsSocket::open(bool ipv4, bool ipv6, uint16_t port, std::string* why) {
  if (fd4_ >= 0 || fd6_ >= 0) {
    if (why) *why = "already open";
    return false;
  }
  port_ = port;
  std::string why4, why6;
  if (ipv4) fd4_ = open_socket(AF_INET, port, &why4);
  if (ipv6) fd6_ = open_socket(AF_INET6, port, &why6);
  if (fd4_ < 0 && fd6_ < 0) {
    if (why) *why = !why4.empty() && !why6.empty() ? why4 + "; " + why6 : why4 + why6;
    if (why && why->empty()) *why = "neither IPv4 nor IPv6 asked for";
    return false;
  }
  return true;
}

bool MdnsSocket::open_private(bool ipv4, bool ipv6, uint16_t group_port, std::string* why) {
  if (fd4_ >= 0 || fd6_ >= 0) {
    if (why) *why = "already open";
    return false;
  }
  port_ = group_port;
  // Both families on one port number (what the beacon announces): an ephemeral IPv4 port, then IPv6 on the
  // same number, a few tries when that one is taken.
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string why4, why6;
    if (ipv4) fd4_ = open_socket(AF_INET, 0, &why4, true);
    uint16_t port = 0;
    if (fd4_ >= 0) {
      sockaddr_in a{};
      socklen_t n = sizeof a;
      getsockname(fd4_, reinterpret_cast<sockaddr*>(&a), &n);
      port = ntohs(a.sin_port);
    }
    if (ipv6) fd6_ = open_socket(AF_INET6, port, &why6, true);
    if (ipv6 && fd6_ < 0 && fd4_ >= 0 && errno == EADDRINUSE) {
      close(fd4_);
      fd4_ = -1;
      continue;
    }
    if (fd4_ < 0 && fd6_ < 0) {
      if (why) *why = !why4.empty() && !why6.empty() ? why4 + "; " + why6 : why4 + why6;
      if (why && why->empty()) *why = "neither IPv4 nor IPv6 asked for";
      return false;
    }
    if (fd4_ < 0) {
      sockaddr_in6 a{};
      socklen_t n = sizeof a;
      getsockname(fd6_, reinterpret_cast<sockaddr*>(&a), &n);
      port = ntohs(a.sin6_port);
    }
    local_port_ = port;
    return true;
  }
  if (why) *why = "no port free for both IPv4 and IPv6";
  return false;
}

MdnsSocket::~MdnsSocket() {
  if (fd4_ >= 0) close(fd4_);
  if (fd6_ >= 0) close(fd6_);
}

bool MdnsSocket::join(int interface_index, std::string* why) {
  if (fd4_ >= 0) {
    ip_mreqn m{};
    m.imr_multiaddr = kGroup4;
    m.imr_ifindex = interface_index;
    if (setsockopt(fd4_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0 && errno != EADDRINUSE)
      return fail(why, "joining 224.0.0.251 on interface " + std::to_string(interface_index));
  }
  if (fd6_ >= 0) {
    ipv6_mreq m{};
    m.ipv6mr_multiaddr = kGroup6;
    m.ipv6mr_interface = static_cast<unsigned>(interface_index);
    if (setsockopt(fd6_, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) != 0 && errno != EADDRINUSE)
      return fail(why, "joining ff02::fb on interface " + std::to_string(interface_index));
  }
  return true;
}

void MdnsSocket::leave(int interface_index) {
  if (fd4_ >= 0) {
    ip_mreqn m{};
    m.imr_multiaddr = kGroup4;
    m.imr_ifindex = interface_index;
    setsockopt(fd4_, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m);
  }
  if (fd6_ >= 0) {
    ipv6_mreq m{};
    m.ipv6mr_multiaddr = kGroup6;
    m.ipv6mr_interface = static_cast<unsigned>(interface_index);
    setsockopt(fd6_, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m);
  }
}

bool MdnsSocket::send_multicast(int family, int interface_index, const std::vector<uint8_t>& bytes,
                                std::string* why) {
  const int fd = family == AF_INET ? fd4_ : fd6_;
  if (fd < 0) {
    if (why) *why = "no socket of that family";
    return false;
  }
  // The interface rides with each datagram (IP_PKTINFO / IPV6_PKTINFO), so one socket serves them all.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  SocketAddress to;
  if (family == AF_INET) {
    to = SocketAddress::ipv4(kGroup4, port_);
    msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo info{};
    info.ipi_ifindex = interface_index;
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
  } else {
    to = SocketAddress::ipv6(kGroup6, port_, static_cast<uint32_t>(interface_index));
    msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
    in6_pktinfo info{};
    info.ipi6_ifindex = static_cast<unsigned>(interface_index);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
  }
  msg.msg_name = &to.storage;
  msg.msg_namelen = to.length;
  if (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
    return fail(why, "sending to the mDNS group on interface " + std::to_string(interface_index));
  return true;
}

bool MdnsSocket::send_to(const SocketAddress& to, const std::vector<uint8_t>& bytes, std::string* why) {
  const int fd = to.family() == AF_INET ? fd4_ : fd6_;
  if (fd < 0) {
    if (why) *why = "no socket of that family";
    return false;
  }
  if (sendto(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&to.storage),
             to.length) < 0)
    return fail(why, "sending to " + to.str());
  return true;
}

bool MdnsSocket::receive(int fd, Datagram& out) {
  out.bytes.resize(9000 + 1);  // one byte more than the largest mDNS message shows an oversized one
  alignas(cmsghdr) char control[256];
  iovec iov{out.bytes.data(), out.bytes.size()};
  msghdr msg{};
  msg.msg_name = &out.source.storage;
  msg.msg_namelen = sizeof out.source.storage;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) return false;
  out.bytes.resize(static_cast<size_t>(n));
  out.source.length = msg.msg_namelen;
  out.interface_index = 0;
  out.hop_limit = -1;
  out.multicast = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      out.interface_index = info.ipi_ifindex;
      out.multicast = info.ipi_addr.s_addr == kGroup4.s_addr;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
      int ttl = 0;
      std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      out.hop_limit = ttl;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      out.interface_index = static_cast<int>(info.ipi6_ifindex);
      out.multicast = std::memcmp(&info.ipi6_addr, &kGroup6, sizeof kGroup6) == 0;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
      int hops = 0;
      std::memcpy(&hops, CMSG_DATA(c), sizeof hops);
      out.hop_limit = hops;
    }
  }
  return true;
}

}  // namespace peerlink::lan
