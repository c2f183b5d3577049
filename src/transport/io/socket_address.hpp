// Conversions between peerlink::Address and the kernel's sockaddr structures. An AF_INET6 socket is
// dual-stack, so IPv4 destinations go to it as v4-mapped addresses, and the v4-mapped sources it reports
// come back as plain IPv4 so that one peer has one Address whichever socket saw it.
//
//   sockaddr_storage ss;
//   socklen_t len = to_sockaddr(peer, AF_INET6, &ss);   // 0: peer cannot be reached from this socket
//   sendto(fd, data, n, 0, reinterpret_cast<sockaddr*>(&ss), len);
#pragma once

#include <sys/socket.h>

#include "peerlink/address.hpp"

namespace peerlink::io {

// Fills *out with a for a socket of socket_family (AF_INET or AF_INET6) and returns the length to pass
// with it. Returns 0 if the socket cannot carry the address: unspecified, or IPv6 (not v4-mapped) for an
// AF_INET socket.
socklen_t to_sockaddr(const Address& a, int socket_family, sockaddr_storage* out);

// The address in sa (len bytes of it are valid), unmapped; unspecified for other families or short lengths.
Address from_sockaddr(const sockaddr_storage& sa, socklen_t len);

}  // namespace peerlink::io
