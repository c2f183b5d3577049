// What the kernel alone achieves between the same two processes over the same path: the baselines of the
// Host scenarios. No crypto, no reliability, no library.
//
//   udp blast   the benchmark sends datagrams of one size with sendmmsg (batches of 32, no GSO) as fast as it
//               can; a udp-sink child receives with recvmmsg and counts what arrives (loss is expected).
//   tcp stream  64 KiB write()s into one kernel TCP connection; a tcp-sink child reads and counts.
//   ping-pong   one datagram at a time, echoed by a UdpEcho that the Host server child runs beside its Host
//               (so the raw and the Host round trips go between the same two processes); both sides block
//               in recv.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "raw_socket.hpp"
#include "server_roles.hpp"
#include "sink_window.hpp"
#include "two_process.hpp"

namespace peerlink::bench {

struct BlastResult {
  SinkResult received;          // during the measured window, at the receiver
  uint64_t datagrams_sent = 0;  // during the warm-up and the window
  double send_seconds = 0;      // the warm-up and the window
};

BlastResult measure_udp_blast(const NetworkPath& path, size_t datagram_size, double seconds);
SinkResult measure_tcp_stream(const NetworkPath& path, size_t write_size, double seconds);

struct PingPongResult {
  std::vector<double> rtt_us;  // one per answered round trip
  uint64_t lost = 0;           // not answered within 200 ms
  // What it cost the pinging process, all its threads, in CPU time per second of wall time (1 = one busy
  // core): while it pinged, and while it then waited the same way with nothing coming. Negative: not
  // measured.
  double cpu_busy = -1, cpu_idle = -1;
};
// Round trips to the UdpEcho at the server's address and `port` until max_trips or `seconds` pass, after a
// short warm-up.
PingPongResult measure_udp_ping_pong(const NetworkPath& path, uint16_t port, size_t size, size_t max_trips,
                                     double seconds);

// Child side: sends every datagram back from its own socket and thread until destroyed.
class UdpEcho {
 public:
  explicit UdpEcho(const std::string& ip);
  ~UdpEcho();
  UdpEcho(const UdpEcho&) = delete;
  UdpEcho& operator=(const UdpEcho&) = delete;
  uint16_t port() const { return port_; }

 private:
  Fd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The child roles (server_roles.hpp).
int run_udp_sink(const RoleArgs& args, ControlChannel& channel);
int run_tcp_sink(const RoleArgs& args, ControlChannel& channel);

}  // namespace peerlink::bench
