#include "netlab/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace peerlink::netlab {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in to_sockaddr(const Endpoint& e) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(e.port);
  sa.sin_addr.s_addr = htonl(parse_ipv4(e.ip));
  return sa;
}

Endpoint from_sockaddr(const sockaddr_in& sa) {
  return Endpoint{format_ipv4(ntohl(sa.sin_addr.s_addr)), ntohs(sa.sin_port)};
}

Endpoint local_of(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return {};
  return from_sockaddr(sa);
}

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, ms_left(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

uint32_t parse_ipv4(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1)
    throw std::invalid_argument("netlab: not an IPv4 address: " + ip);
  return ntohl(a.s_addr);
}

std::string format_ipv4(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

UdpSocket::UdpSocket(const std::string& ip, uint16_t port) {
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("netlab: socket: ") + std::strerror(errno));
  sockaddr_in sa = to_sockaddr(Endpoint{ip, port});
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::string what = "netlab: bind " + ip + ":" + std::to_string(port) + ": " + std::strerror(errno);
    close(fd_);
    fd_ = -1;
    throw std::runtime_error(what);
  }
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) close(fd_);
}

UdpSocket::UdpSocket(UdpSocket&& o) noexcept : fd_(o.fd_) {
  o.fd_ = -1;
}

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Endpoint UdpSocket::local() const {
  return local_of(fd_);
}

bool UdpSocket::send_to(const Endpoint& to, const Bytes& data) {
  sockaddr_in sa = to_sockaddr(to);
  for (;;) {
    ssize_t n = sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    // An ICMP error from an earlier datagram is reported on the next call; that one was not sent.
    if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) {
      n = sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
      return n >= 0;
    }
    return false;
  }
}

std::optional<Datagram> UdpSocket::receive(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    Datagram d;
    d.data.resize(65536);
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ssize_t n = recvfrom(fd_, d.data.data(), d.data.size(), 0, reinterpret_cast<sockaddr*>(&sa), &len);
    if (n >= 0) {
      d.data.resize(static_cast<size_t>(n));
      d.from = from_sockaddr(sa);
      return d;
    }
    // EAGAIN: nothing yet; ICMP errors (ECONNREFUSED...) are not datagrams: keep waiting.
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNREFUSED &&
        errno != EHOSTUNREACH && errno != ENETUNREACH)
      return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    if (!wait_for(fd_, POLLIN, deadline)) return std::nullopt;
  }
}

std::optional<TcpSocket> TcpSocket::connect(const Endpoint& to, std::chrono::milliseconds timeout,
                                            std::string* why) {
  const auto deadline = Clock::now() + timeout;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    if (why) *why = std::string("socket: ") + std::strerror(errno);
    return std::nullopt;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in sa = to_sockaddr(to);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  if (rc != 0 && errno != EINPROGRESS) {
    if (why) *why = std::string("connect: ") + std::strerror(errno);
    close(fd);
    return std::nullopt;
  }
  if (rc != 0) {
    if (!wait_for(fd, POLLOUT, deadline)) {
      if (why) *why = "connect to " + to.str() + " timed out";
      close(fd);
      return std::nullopt;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      if (why) *why = "connect to " + to.str() + ": " + std::strerror(err);
      close(fd);
      return std::nullopt;
    }
  }
  return TcpSocket(fd);
}

TcpSocket::~TcpSocket() {
  if (fd_ >= 0) close(fd_);
}

TcpSocket::TcpSocket(TcpSocket&& o) noexcept : fd_(o.fd_) {
  o.fd_ = -1;
}

TcpSocket& TcpSocket::operator=(TcpSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Endpoint TcpSocket::local() const {
  return local_of(fd_);
}

bool TcpSocket::send_all(const Bytes& data, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd_, POLLOUT, deadline)) return false;
      continue;
    }
    return false;
  }
  return true;
}

std::optional<Bytes> TcpSocket::receive_exact(size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Bytes out(n);
  size_t done = 0;
  while (done < n) {
    ssize_t got = recv(fd_, out.data() + done, n - done, 0);
    if (got > 0) {
      done += static_cast<size_t>(got);
      continue;
    }
    if (got == 0) return std::nullopt;
    if (errno != EAGAIN && errno != EINTR) return std::nullopt;
    if (!wait_for(fd_, POLLIN, deadline)) return std::nullopt;
  }
  return out;
}

}  // namespace peerlink::netlab
