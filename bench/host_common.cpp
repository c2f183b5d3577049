#include "host_common.hpp"

#include <chrono>
#include <stdexcept>

#include "measure.hpp"

namespace peerlink::bench {

namespace {

Address parse_ip(const std::string& ip) {
  Result<Address> a = Address::parse(ip);
  if (!a) throw std::runtime_error("bad address " + ip + ": " + a.error().message);
  return *a;
}

}  // namespace

HostConfig bench_host_config(const std::string& bind_ip) {
  HostConfig config;
  config.bind_address = parse_ip(bind_ip);
  return config;
}

const char* congestion_name(CongestionControl cc) {
  switch (cc) {
    case CongestionControl::kBbr:
      return "bbr";
    case CongestionControl::kCubic:
      return "cubic";
    case CongestionControl::kNewReno:
      return "newreno";
  }
  return "?";
}

void ignore_events(Host& host) {
  host.set_connection_callback([](const ConnectionEvent&) {});
}

std::string listen_for_bench(Host& host, const std::string& ip, PollGroupHandle group) {
  ListenOptions options;
  options.poll_group = group;
  Result<ListenSocketHandle> socket = host.listen(parse_ip(ip), options);
  if (!socket) throw std::runtime_error("listen on " + ip + ": " + socket.error().message);
  auto bound = host.listen_address(*socket);
  if (!bound) throw std::runtime_error("listen_address() knows no address for a new listen socket");
  return "ready port=" + std::to_string(bound->port()) + " key=" + key_to_hex(host.identity().public_key());
}

std::string key_to_hex(const PublicKey& key) {
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : key) {
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

PublicKey key_from_hex(const std::string& hex) {
  PublicKey key{};
  if (hex.size() != key.size() * 2) throw std::runtime_error("a public key has 64 hex digits: " + hex);
  auto nibble = [&](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return uint8_t(c - '0');
    if (c >= 'a' && c <= 'f') return uint8_t(c - 'a' + 10);
    throw std::runtime_error("not a hex digit in key: " + hex);
  };
  for (size_t i = 0; i < key.size(); ++i)
    key[i] = uint8_t(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  return key;
}

Address server_address(const NetworkPath& path, const ControlMessage& ready) {
  Address a = parse_ip(path.server_ip);
  a.set_port(uint16_t(ready.u64("port")));
  return a;
}

ConnectionHandle connect_and_wait(Host& host, const Address& to, const PublicKey& key,
                                  double timeout_seconds) {
  ConnectOptions options;
  options.expected_key = key;
  Result<ConnectionHandle> connecting = host.connect(to, options);
  if (!connecting)
    throw std::runtime_error("connect to " + to.to_string() + ": " + connecting.error().message);
  const ConnectionHandle c = *connecting;
  int64_t deadline = monotonic_ns() + int64_t(timeout_seconds * 1e9);
  for (;;) {
    auto info = host.connection_info(c);
    if (!info) throw std::runtime_error("connection_info() lost the new connection");
    if (info->state == ConnectionState::kConnected) return c;
    if (info->state == ConnectionState::kClosed || info->state == ConnectionState::kClosing)
      throw std::runtime_error("connect to " + to.to_string() + " failed: " +
                               to_string(EndReason(info->end_reason)) + " (" + info->end_debug + ")");
    if (monotonic_ns() > deadline)
      throw std::runtime_error("connect to " + to.to_string() + ": not connected after " +
                               std::to_string(timeout_seconds) + " s");
    host.wait(std::chrono::milliseconds(5));
    host.run_callbacks();
  }
}

}  // namespace peerlink::bench
