// Plain IPv4 sockets for lab checks, every operation bounded by a timeout. A socket belongs to the network
// namespace of the thread that created it: create it inside a NetnsScope to put it into a lab namespace.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace peerlink::netlab {

struct Endpoint {
  std::string ip;  // dotted IPv4
  uint16_t port = 0;
  std::string str() const { return ip + ":" + std::to_string(port); }
  bool operator==(const Endpoint& o) const { return ip == o.ip && port == o.port; }
  bool operator!=(const Endpoint& o) const { return !(*this == o); }
};

using Bytes = std::vector<uint8_t>;

struct Datagram {
  Bytes data;
  Endpoint from;
};

class UdpSocket {
 public:
  // Binds to ip:port (port 0: any) in the calling thread's current namespace; throws std::runtime_error.
  explicit UdpSocket(const std::string& ip = "0.0.0.0", uint16_t port = 0);
  ~UdpSocket();
  UdpSocket(UdpSocket&& o) noexcept;
  UdpSocket& operator=(UdpSocket&& o) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  int fd() const { return fd_; }
  Endpoint local() const;
  // False when the kernel refused (e.g. no route); a datagram dropped on the way still returns true.
  bool send_to(const Endpoint& to, const Bytes& data);
  // The next datagram, or nullopt when none arrives within `timeout`.
  std::optional<Datagram> receive(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
};

class TcpSocket {
 public:
  // Connects from the calling thread's current namespace within `timeout`; nullopt on failure or timeout
  // (with the reason in *why when given).
  static std::optional<TcpSocket> connect(const Endpoint& to, std::chrono::milliseconds timeout,
                                          std::string* why = nullptr);
  ~TcpSocket();
  TcpSocket(TcpSocket&& o) noexcept;
  TcpSocket& operator=(TcpSocket&& o) noexcept;
  TcpSocket(const TcpSocket&) = delete;
  TcpSocket& operator=(const TcpSocket&) = delete;

  int fd() const { return fd_; }
  Endpoint local() const;
  bool send_all(const Bytes& data, std::chrono::milliseconds timeout);
  // Exactly n bytes, or nullopt on timeout / close.
  std::optional<Bytes> receive_exact(size_t n, std::chrono::milliseconds timeout);

 private:
  explicit TcpSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Conversions between dotted IPv4 and host-order integers; throw std::invalid_argument on bad input.
uint32_t parse_ipv4(const std::string& ip);
std::string format_ipv4(uint32_t host_order);

}  // namespace peerlink::netlab
