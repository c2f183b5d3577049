// Plain IPv4 kernel sockets for the baselines. Every call throws std::runtime_error naming what failed.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

namespace peerlink::bench {

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in ipv4_address(const std::string& ip, uint16_t port);

// SOCK_DGRAM or SOCK_STREAM, bound to ip and an ephemeral port.
Fd open_bound_socket(int type, const std::string& ip);
uint16_t local_port(int fd);
void connect_to(int fd, const std::string& ip, uint16_t port);

// SO_RCVBUF and SO_SNDBUF as the Host sets them (the FORCE variants when allowed), so the raw baselines
// get the same socket buffers as peerlink's sockets.
void set_socket_buffers(int fd, int bytes);
// SO_RCVTIMEO or SO_SNDTIMEO: bounds every blocking call so loops can notice that they should stop.
void set_timeout(int fd, int option, int milliseconds);

}  // namespace peerlink::bench
