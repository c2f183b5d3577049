// Address <-> sockaddr conversions. Structures are copied with memcpy rather than cast, so that reading a
// sockaddr_storage as sockaddr_in6 is never an aliasing question.
#include "transport/io/socket_address.hpp"

#include <netinet/in.h>

#include <cstring>

namespace peerlink::io {

socklen_t to_sockaddr(const Address& a, int socket_family, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (socket_family == AF_INET) {
    Address v4 = a.unmapped();
    if (!v4.is_ipv4()) return 0;
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(v4.port());
    std::memcpy(&sin.sin_addr, v4.bytes().data(), 4);
    std::memcpy(out, &sin, sizeof sin);
    return sizeof sin;
  }
  if (socket_family == AF_INET6) {
    Address v6 = a.mapped();
    if (!v6.is_ipv6()) return 0;
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(v6.port());
    sin6.sin6_scope_id = v6.scope_id();
    std::memcpy(&sin6.sin6_addr, v6.bytes().data(), 16);
    std::memcpy(out, &sin6, sizeof sin6);
    return sizeof sin6;
  }
  return 0;
}

Address from_sockaddr(const sockaddr_storage& sa, socklen_t len) {
  if (sa.ss_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
    sockaddr_in sin;
    std::memcpy(&sin, &sa, sizeof sin);
    std::array<uint8_t, 4> ip;
    std::memcpy(ip.data(), &sin.sin_addr, 4);
    return Address::ipv4(ip, ntohs(sin.sin_port));
  }
  if (sa.ss_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &sa, sizeof sin6);
    std::array<uint8_t, 16> ip;
    std::memcpy(ip.data(), &sin6.sin6_addr, 16);
    return Address::ipv6(ip, ntohs(sin6.sin6_port), sin6.sin6_scope_id).unmapped();
  }
  return Address();
}

}  // namespace peerlink::io
