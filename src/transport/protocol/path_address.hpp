// Where a datagram came from or goes to, as the protocol core sees it: an opaque, comparable, hashable
// value. The io layer encodes socket addresses (family, IP, port) into it; an ICE path or the simulator
// uses any bytes it likes. The core only compares addresses and feeds them to the retry-cookie MAC.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace peerlink::protocol {

struct PathAddress {
  static constexpr size_t kMaxSize = 32;
  std::array<uint8_t, kMaxSize> bytes{};
  uint8_t size = 0;

  static PathAddress from_bytes(const void* data, size_t n) {
    PathAddress a;
    a.size = uint8_t(n > kMaxSize ? kMaxSize : n);
    std::memcpy(a.bytes.data(), data, a.size);
    return a;
  }
  // Convenience for tests and the simulator: a node number.
  static PathAddress from_u64(uint64_t v) { return from_bytes(&v, sizeof v); }

  bool operator==(const PathAddress& o) const {
    return size == o.size && std::memcmp(bytes.data(), o.bytes.data(), size) == 0;
  }
  bool operator!=(const PathAddress& o) const { return !(*this == o); }
};

struct PathAddressHash {
  size_t operator()(const PathAddress& a) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < a.size; ++i)
      h = (h ^ a.bytes[i]) * 1099511628211ull;
    return size_t(h);
  }
};

}  // namespace peerlink::protocol
