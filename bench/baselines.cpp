#include "baselines.hpp"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "measure.hpp"
#include "raw_socket.hpp"

namespace peerlink::bench {

namespace {

constexpr int kSocketBufferBytes = 4 << 20;  // HostConfig::socket_buffer_bytes' default
constexpr int kBlastBatch = 32;
constexpr int kSinkBatch = 64;
constexpr size_t kMaxDatagram = 2048;

void put_u64(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, sizeof v);
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

// --- benchmark side ---

BlastResult measure_udp_blast(const NetworkPath& path, size_t datagram_size, double seconds) {
  ServerProcess server(path, "udp-sink", {}, seconds + 60);
  Fd fd = open_bound_socket(SOCK_DGRAM, path.client_ip);
  set_socket_buffers(fd.get(), kSocketBufferBytes);
  set_timeout(fd.get(), SO_SNDTIMEO, 100);
  connect_to(fd.get(), path.server_ip, uint16_t(server.ready().u64("port")));

  std::vector<uint8_t> payload(datagram_size, 0x5a);
  iovec iov{payload.data(), payload.size()};
  mmsghdr batch[kBlastBatch];
  std::memset(batch, 0, sizeof batch);
  for (auto& m : batch) {
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
  }
  BlastResult result;
  int64_t start_ns = monotonic_ns();
  SinkWindow window(server, seconds);
  while (window.running()) {
    int n = sendmmsg(fd.get(), batch, kBlastBatch, 0);
    if (n > 0) result.datagrams_sent += uint64_t(n);
    // ENOBUFS, EAGAIN (send timeout) and ECONNREFUSED (an ICMP from a moment without a socket) are load.
  }
  result.send_seconds = seconds_between(start_ns, monotonic_ns());
  result.received = window.finish();
  return result;
}

SinkResult measure_tcp_stream(const NetworkPath& path, size_t write_size, double seconds) {
  ServerProcess server(path, "tcp-sink", {}, seconds + 60);
  Fd fd = open_bound_socket(SOCK_STREAM, path.client_ip);
  connect_to(fd.get(), path.server_ip, uint16_t(server.ready().u64("port")));
  set_timeout(fd.get(), SO_SNDTIMEO, 100);
  std::vector<uint8_t> chunk(write_size, 0x5a);
  SinkWindow window(server, seconds);
  while (window.running()) {
    ssize_t n = send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      throw std::runtime_error(std::string("tcp send: ") + std::strerror(errno));
  }
  return window.finish();
}

PingPongResult measure_udp_ping_pong(const NetworkPath& path, uint16_t port, size_t size, size_t max_trips,
                                     double seconds) {
  Fd fd = open_bound_socket(SOCK_DGRAM, path.client_ip);
  set_socket_buffers(fd.get(), kSocketBufferBytes);
  set_timeout(fd.get(), SO_RCVTIMEO, 200);
  connect_to(fd.get(), path.server_ip, port);
  std::vector<uint8_t> out(std::max<size_t>(size, 8)), in(kMaxDatagram);

  PingPongResult result;
  constexpr size_t kWarmup = 200;
  int64_t end_ns = monotonic_ns() + int64_t(seconds * 1e9);
  for (uint64_t seq = 1; result.rtt_us.size() < max_trips && monotonic_ns() < end_ns; ++seq) {
    put_u64(out.data(), seq);
    int64_t t0 = monotonic_ns();
    if (send(fd.get(), out.data(), size, 0) < 0) continue;
    for (;;) {
      ssize_t n = recv(fd.get(), in.data(), in.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ++result.lost;
        break;
      }
      if (size_t(n) >= 8 && get_u64(in.data()) == seq) {
        if (seq > kWarmup) result.rtt_us.push_back(double(monotonic_ns() - t0) / 1e3);
        break;
      }
      // A late answer to an earlier ping: not this one.
    }
  }
  return result;
}

// --- child roles ---

int run_udp_sink(const RoleArgs& args, ControlChannel& channel) {
  Fd fd = open_bound_socket(SOCK_DGRAM, args.bind_ip);
  set_socket_buffers(fd.get(), kSocketBufferBytes);
  set_timeout(fd.get(), SO_RCVTIMEO, 100);
  std::string ready = "ready port=" + std::to_string(local_port(fd.get()));
  SinkCounters counters;
  std::atomic<bool> stop{false};
  std::thread receiver([&] {
    std::vector<uint8_t> buffers(kSinkBatch * kMaxDatagram);
    iovec iov[kSinkBatch];
    mmsghdr batch[kSinkBatch];
    std::memset(batch, 0, sizeof batch);
    for (int i = 0; i < kSinkBatch; ++i) {
      iov[i] = {buffers.data() + size_t(i) * kMaxDatagram, kMaxDatagram};
      batch[i].msg_hdr.msg_iov = &iov[i];
      batch[i].msg_hdr.msg_iovlen = 1;
    }
    while (!stop.load(std::memory_order_relaxed)) {
      int n = recvmmsg(fd.get(), batch, kSinkBatch, MSG_WAITFORONE, nullptr);
      if (n <= 0) continue;
      uint64_t bytes = 0;
      for (int i = 0; i < n; ++i)
        bytes += batch[i].msg_len;
      counters.bytes.fetch_add(bytes, std::memory_order_relaxed);
      counters.messages.fetch_add(uint64_t(n), std::memory_order_relaxed);
    }
  });
  channel.say(ready);
  serve_sink_commands(channel, counters);
  stop = true;
  receiver.join();
  return 0;
}

int run_tcp_sink(const RoleArgs& args, ControlChannel& channel) {
  Fd listener = open_bound_socket(SOCK_STREAM, args.bind_ip);
  if (listen(listener.get(), 1) != 0)
    throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
  set_timeout(listener.get(), SO_RCVTIMEO, 100);  // bounds accept()
  std::string ready = "ready port=" + std::to_string(local_port(listener.get()));
  SinkCounters counters;
  std::atomic<bool> stop{false};
  std::thread receiver([&] {
    Fd conn;
    while (!stop.load() && conn.get() < 0)
      conn = Fd(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.get() < 0) return;
    set_timeout(conn.get(), SO_RCVTIMEO, 100);
    std::vector<uint8_t> buffer(256 * 1024);
    while (!stop.load(std::memory_order_relaxed)) {
      ssize_t n = recv(conn.get(), buffer.data(), buffer.size(), 0);
      if (n == 0) break;  // the benchmark closed its end
      if (n < 0) continue;
      counters.bytes.fetch_add(uint64_t(n), std::memory_order_relaxed);
      counters.messages.fetch_add(1, std::memory_order_relaxed);
    }
  });
  channel.say(ready);
  serve_sink_commands(channel, counters);
  stop = true;
  receiver.join();
  return 0;
}

UdpEcho::UdpEcho(const std::string& ip) : fd_(open_bound_socket(SOCK_DGRAM, ip)) {
  set_socket_buffers(fd_.get(), kSocketBufferBytes);
  set_timeout(fd_.get(), SO_RCVTIMEO, 100);  // bounds recvfrom, so the thread notices stop_
  port_ = local_port(fd_.get());
  thread_ = std::thread([this] {
    std::vector<uint8_t> buffer(kMaxDatagram);
    while (!stop_.load(std::memory_order_relaxed)) {
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n =
          recvfrom(fd_.get(), buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      sendto(fd_.get(), buffer.data(), size_t(n), 0, reinterpret_cast<const sockaddr*>(&from), len);
    }
  });
}

UdpEcho::~UdpEcho() {
  stop_ = true;
  thread_.join();
}

}  // namespace peerlink::bench
