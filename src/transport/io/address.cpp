// peerlink::Address: construction, strict numeric parsing and printing.
#include "peerlink/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace peerlink {
namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool has_mapped_prefix(const std::array<uint8_t, 16>& ip) {
  return std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), ip.begin());
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Digits only, so that "+80", " 80" or "0x50" (which strtoul would take) are rejected.
bool parse_uint(std::string_view s, uint64_t max, uint64_t* out) {
  if (!is_digits(s)) return false;
  uint64_t v = 0;
  for (char c : s) {
    v = v * 10 + uint64_t(c - '0');
    if (v > max) return false;
  }
  *out = v;
  return true;
}

// The text may be anything a peer or a config file sent; keep the message one short, printable line.
std::string printable(std::string_view s) {
  static constexpr size_t kMaxShown = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

// Parse helpers report problems through this, so every message names the text it rejects.
struct Failure {
  std::string_view text;
  std::string* error;

  std::nullopt_t operator()(const std::string& problem) const {
    if (error) *error = "invalid address \"" + printable(text) + "\": " + problem;
    return std::nullopt;
  }
};

std::optional<uint16_t> parse_port(std::string_view s, const Failure& fail) {
  if (s.empty()) return fail("empty port after ':'");
  uint64_t v = 0;
  if (!is_digits(s)) return fail("port \"" + printable(s) + "\" is not a decimal number");
  if (!parse_uint(s, 65535, &v)) return fail("port " + printable(s) + " is out of range (0-65535)");
  return uint16_t(v);
}

std::optional<uint32_t> parse_scope(std::string_view s, const Failure& fail) {
  if (s.empty()) return fail("empty scope after '%'");
  uint64_t v = 0;
  if (is_digits(s)) {
    if (!parse_uint(s, UINT32_MAX, &v)) return fail("scope id " + printable(s) + " is too large");
    return uint32_t(v);
  }
  std::string name(s);
  unsigned index = name.size() < IF_NAMESIZE ? if_nametoindex(name.c_str()) : 0;
  if (index == 0) return fail("unknown network interface \"" + printable(name) + "\"");
  return uint32_t(index);
}

std::optional<Address> parse_ipv4(std::string_view host, uint16_t port, const Failure& fail) {
  std::string s(host);
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return fail("\"" + printable(s) + "\" is not an IPv4 address");
  std::array<uint8_t, 4> ip{};
  std::memcpy(ip.data(), &a, ip.size());
  return Address::ipv4(ip, port);
}

// host is an IPv6 address without brackets, possibly with "%scope".
std::optional<Address> parse_ipv6(std::string_view host, uint16_t port, const Failure& fail) {
  uint32_t scope = 0;
  size_t percent = host.find('%');
  if (percent != std::string_view::npos) {
    auto s = parse_scope(host.substr(percent + 1), fail);
    if (!s) return std::nullopt;
    scope = *s;
    host = host.substr(0, percent);
  }
  std::string s(host);
  in6_addr a{};
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1) return fail("\"" + printable(s) + "\" is not an IPv6 address");
  std::array<uint8_t, 16> ip{};
  std::memcpy(ip.data(), &a, ip.size());
  return Address::ipv6(ip, port, scope);
}

}  // namespace

Address Address::ipv4(const std::array<uint8_t, 4>& ip, uint16_t port) {
  Address a;
  a.family_ = Family::kIPv4;
  a.port_ = port;
  std::copy(ip.begin(), ip.end(), a.ip_.begin());
  return a;
}

Address Address::ipv6(const std::array<uint8_t, 16>& ip, uint16_t port, uint32_t scope_id) {
  Address a;
  a.family_ = Family::kIPv6;
  a.port_ = port;
  a.scope_id_ = scope_id;
  a.ip_ = ip;
  return a;
}

namespace {

std::optional<Address> parse_address(std::string_view text, std::string* error, uint16_t default_port) {
  Failure fail{text, error};
  if (text.empty()) return fail("empty");
  // inet_pton and if_nametoindex take C strings; an embedded NUL would silently cut the text short.
  if (text.find('\0') != std::string_view::npos) return fail("contains a NUL character");

  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after the IPv6 address");
    std::string_view host = text.substr(1, close - 1);
    if (host.empty()) return fail("empty IPv6 address between '[' and ']'");
    std::string_view rest = text.substr(close + 1);
    uint16_t port = default_port;
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("expected ':port' after ']', found \"" + printable(rest) + "\"");
      auto p = parse_port(rest.substr(1), fail);
      if (!p) return std::nullopt;
      port = *p;
    }
    if (host.find(':') == std::string_view::npos) return fail("brackets are only for IPv6 addresses");
    return parse_ipv6(host, port, fail);
  }

  if (text.find(']') != std::string_view::npos) return fail("']' without a matching '['");
  size_t colons = size_t(std::count(text.begin(), text.end(), ':'));
  if (colons == 0) return parse_ipv4(text, default_port, fail);
  if (colons == 1) {
    // One colon can only be IPv4 with a port; IPv6 has at least two and needs brackets to carry a port.
    size_t colon = text.find(':');
    auto p = parse_port(text.substr(colon + 1), fail);
    if (!p) return std::nullopt;
    return parse_ipv4(text.substr(0, colon), *p, fail);
  }
  return parse_ipv6(text, default_port, fail);
}

}  // namespace

Result<Address> Address::parse(std::string_view text, uint16_t default_port) {
  std::string why;
  std::optional<Address> a = parse_address(text, &why, default_port);
  if (!a) return Error{ErrorCode::kInvalidArgument, why};
  return *a;
}

bool Address::is_ipv4_or_mapped() const {
  return is_ipv4() || (is_ipv6() && has_mapped_prefix(ip_));
}

bool Address::is_loopback() const {
  if (is_ipv4()) return ip_[0] == 127;
  if (!is_ipv6()) return false;
  if (has_mapped_prefix(ip_)) return ip_[12] == 127;
  static constexpr std::array<uint8_t, 16> kLoopback = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ip_ == kLoopback;
}

bool Address::is_any() const {
  if (is_ipv4()) return ip_[0] == 0 && ip_[1] == 0 && ip_[2] == 0 && ip_[3] == 0;
  if (is_ipv6()) return ip_ == std::array<uint8_t, 16>{};
  return false;
}

Address Address::unmapped() const {
  if (!is_ipv6() || !has_mapped_prefix(ip_)) return *this;
  return ipv4({ip_[12], ip_[13], ip_[14], ip_[15]}, port_);
}

Address Address::mapped() const {
  if (!is_ipv4()) return *this;
  std::array<uint8_t, 16> ip{};
  std::copy(kMappedPrefix.begin(), kMappedPrefix.end(), ip.begin());
  std::copy(ip_.begin(), ip_.begin() + 4, ip.begin() + 12);
  return ipv6(ip, port_);
}

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_ipv4()) {
    inet_ntop(AF_INET, ip_.data(), buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port_);
  }
  if (is_ipv6()) {
    inet_ntop(AF_INET6, ip_.data(), buf, sizeof buf);
    std::string s = "[" + std::string(buf);
    // Numeric, not the interface name: names can change or vanish, and the number parses back the same.
    if (scope_id_ != 0) s += "%" + std::to_string(scope_id_);
    return s + "]:" + std::to_string(port_);
  }
  return "(none)";
}

}  // namespace peerlink
