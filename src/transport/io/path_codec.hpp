// How the Host names a UDP path to the protocol core: which of its sockets, and the peer's address, packed
// into the core's opaque PathAddress. The same peer reached through two sockets is two paths.
#pragma once

#include <cstdint>
#include <cstring>

#include "peerlink/address.hpp"
#include "transport/protocol/path_address.hpp"

namespace peerlink::io {

// Layout: socket index, family, port (2, host order), scope id (4), IP (16): 24 bytes.
inline protocol::PathAddress encode_path(uint8_t socket_index, const Address& address) {
  uint8_t b[24];
  b[0] = socket_index;
  b[1] = uint8_t(address.family());
  uint16_t port = address.port();
  uint32_t scope = address.scope_id();
  std::memcpy(b + 2, &port, 2);
  std::memcpy(b + 4, &scope, 4);
  std::memcpy(b + 8, address.bytes().data(), 16);
  return protocol::PathAddress::from_bytes(b, sizeof b);
}

// False if the path is not one of ours (malformed).
inline bool decode_path(const protocol::PathAddress& path, uint8_t& socket_index, Address& address) {
  if (path.size != 24) return false;
  const uint8_t* b = path.bytes.data();
  socket_index = b[0];
  uint16_t port;
  uint32_t scope;
  std::memcpy(&port, b + 2, 2);
  std::memcpy(&scope, b + 4, 4);
  if (b[1] == uint8_t(Address::Family::kIPv4)) {
    address = Address::ipv4({b[8], b[9], b[10], b[11]}, port);
  } else if (b[1] == uint8_t(Address::Family::kIPv6)) {
    std::array<uint8_t, 16> ip;
    std::memcpy(ip.data(), b + 8, 16);
    address = Address::ipv6(ip, port, scope);
  } else {
    return false;
  }
  return true;
}

// The socket of a UDP path without decoding its address (per datagram on the receive path); false for an
// ICE path or a malformed one.
inline bool decode_path_socket(const protocol::PathAddress& path, uint8_t& socket_index) {
  if (path.size != 24) return false;
  socket_index = path.bytes[0];
  return true;
}

// An ICE stream as a path: a tag byte and the stream id (5 bytes, so never mistaken for a socket path).
inline constexpr uint8_t kIcePathTag = 0xFE;
inline protocol::PathAddress encode_ice_path(uint32_t stream) {
  uint8_t b[5] = {kIcePathTag};
  std::memcpy(b + 1, &stream, 4);
  return protocol::PathAddress::from_bytes(b, sizeof b);
}
inline bool decode_ice_path(const protocol::PathAddress& path, uint32_t& stream) {
  if (path.size != 5 || path.bytes[0] != kIcePathTag) return false;
  std::memcpy(&stream, path.bytes.data() + 1, 4);
  return true;
}

}  // namespace peerlink::io
