// An IP address and UDP port, IPv4 or IPv6: where a direct connection goes or a listen socket is bound.
//
//   auto a = peerlink::Address::parse("[2001:db8::1]:7777");   // or "192.0.2.1:7777", "::1", ...
//   if (!a) { std::cerr << a.error().message << "\n"; return 1; }
//   std::cout << a->to_string();                                       // "[2001:db8::1]:7777"
//
// Thread-safety: a plain value; copies may be used from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "peerlink/error.hpp"

namespace peerlink {

class Address {
 public:
  enum class Family : uint8_t { kUnspecified, kIPv4, kIPv6 };

  Address() = default;  // unspecified: no address
  static Address ipv4(const std::array<uint8_t, 4>& ip, uint16_t port);
  static Address ipv6(const std::array<uint8_t, 16>& ip, uint16_t port, uint32_t scope_id = 0);
  static Address loopback_v4(uint16_t port) { return ipv4({127, 0, 0, 1}, port); }
  static Address any_v6(uint16_t port) { return ipv6({}, port); }  // "[::]": every interface, dual-stack

  // Numeric forms only (no name resolution): "192.0.2.1:7777", "192.0.2.1", "[2001:db8::1]:7777",
  // "2001:db8::1", "[fe80::1%eth0]:7777". Without a port the port is default_port. Fails with
  // ErrorCode::kInvalidArgument, saying what is wrong with the text.
  static Result<Address> parse(std::string_view text, uint16_t default_port = 0);

  Family family() const { return family_; }
  bool is_ipv4() const { return family_ == Family::kIPv4; }
  bool is_ipv6() const { return family_ == Family::kIPv6; }
  bool is_unspecified() const { return family_ == Family::kUnspecified; }
  // An IPv4 address, or an IPv6 address that is IPv4-mapped (::ffff:a.b.c.d).
  bool is_ipv4_or_mapped() const;
  bool is_loopback() const;
  bool is_any() const;  // 0.0.0.0 or ::

  uint16_t port() const { return port_; }
  void set_port(uint16_t port) { port_ = port; }
  uint32_t scope_id() const { return scope_id_; }
  // IPv4: the 4 bytes in the first 4; IPv6: all 16.
  const std::array<uint8_t, 16>& bytes() const { return ip_; }

  // The same address as IPv4 if it is IPv4-mapped IPv6, else unchanged.
  Address unmapped() const;
  // The same address as IPv4-mapped IPv6 if it is IPv4, else unchanged.
  Address mapped() const;

  // "192.0.2.1:7777", "[2001:db8::1]:7777", "[fe80::1%2]:7777"; "(none)" when unspecified.
  std::string to_string() const;

  bool operator==(const Address& o) const {
    return family_ == o.family_ && port_ == o.port_ && ip_ == o.ip_ && scope_id_ == o.scope_id_;
  }
  bool operator!=(const Address& o) const { return !(*this == o); }

 private:
  Family family_ = Family::kUnspecified;
  uint16_t port_ = 0;
  uint32_t scope_id_ = 0;
  std::array<uint8_t, 16> ip_{};
};

}  // namespace peerlink
