// The LAN beacon's multicast DNS sockets (RFC 6762 §5, §11): one UDP socket per address family on port
// 5353, shared with other responders on the host (SO_REUSEADDR + SO_REUSEPORT), joined to 224.0.0.251 and
// ff02::fb on the interfaces it is told by index (never "any": namespaces and multi-homed hosts have no
// default interface), sending per interface with TTL/hop limit 255, and telling for every datagram
// received the interface it came in on and its TTL/hop limit, so the beacon can answer on-link sources only.
// Non-blocking; the caller polls fd4()/fd6().
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace peerlink::lan {

inline constexpr uint16_t kMdnsPort = 5353;

// An IPv4 or IPv6 socket address (IPv6 link-local with its scope id).
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  uint16_t port() const;
  std::string str() const;   // "100.64.1.2:5353", "[fe80::1%2]:5353"
  std::string host() const;  // the address alone: "100.64.1.2", "fe80::1%2"
  static SocketAddress ipv4(const in_addr& address, uint16_t port);
  static SocketAddress ipv6(const in6_addr& address, uint16_t port, uint32_t scope_id);
};

struct Datagram {
  std::vector<uint8_t> bytes;
  SocketAddress source;
  int interface_index = 0;  // the interface it arrived on
  int hop_limit = -1;       // its IPv4 TTL or IPv6 hop limit; 255 means it was sent on this link
  bool multicast = false;   // sent to the mDNS group (else to us by unicast)
};

class MdnsSocket {
 public:
  // Opens and binds the sockets of the families asked for, on `port` (5353; tests may choose another).
  // Returns false with `why` when none could be opened.
  bool open(bool ipv4, bool ipv6, uint16_t port, std::string* why);
  // Opens sockets of a port of their own (ephemeral; the same number for both families, local_port()),
  // not shared and joined to nothing, that send to the mDNS group on `group_port` and receive what is
  // sent to that port by unicast: queries from them get their unicast answers back to this socket alone.
  bool open_private(bool ipv4, bool ipv6, uint16_t group_port, std::string* why);
  uint16_t local_port() const { return local_port_; }
  ~MdnsSocket();
  MdnsSocket() = default;
  MdnsSocket(const MdnsSocket&) = delete;
  MdnsSocket& operator=(const MdnsSocket&) = delete;

  int fd4() const { return fd4_; }
  int fd6() const { return fd6_; }

  // Joins or leaves the group on one interface, for each open family. Leaving an interface that is gone
  // is not an error.
  bool join(int interface_index, std::string* why);
  void leave(int interface_index);

  // Sends to the mDNS group on one interface (IPv4 or IPv6 socket by `family`).
  bool send_multicast(int family, int interface_index, const std::vector<uint8_t>& bytes, std::string* why);
  // Sends to one address (a unicast answer), from the socket of its family.
  bool send_to(const SocketAddress& to, const std::vector<uint8_t>& bytes, std::string* why);
  // Reads one datagram from `fd` (fd4() or fd6()); false when nothing is waiting.
  bool receive(int fd, Datagram& out);

 private:
  int fd4_ = -1, fd6_ = -1;
  uint16_t port_ = kMdnsPort;  // of the group
  uint16_t local_port_ = 0;
};

}  // namespace peerlink::lan
