// What the kernel alone achieves between the same two processes over the same path: the baselines of the
// Host scenarios. No crypto, no reliability, no library.
//
//   udp blast   the benchmark sends datagrams of one size with sendmmsg (batches of 32, no GSO) as fast as it
//               can; a udp-sink child receives with recvmmsg and counts what arrives (loss is expected).
//   tcp stream  64 KiB write()s into one kernel TCP connection; a tcp-sink child reads and counts.
//   ping-pong   one datagram at a time, echoed by a udp-echo child; both sides block in recv.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "server_roles.hpp"
#include "sink_window.hpp"
#include "two_process.hpp"

namespace peerlink::bench {

struct BlastResult {
  SinkResult received;  // during the measured window, at the receiver
  uint64_t datagrams_sent = 0;  // during the warm-up and the window
  double send_seconds = 0;       // the warm-up and the window
};

BlastResult measure_udp_blast(const NetworkPath& path, size_t datagram_size, double seconds);
SinkResult measure_tcp_stream(const NetworkPath& path, size_t write_size, double seconds);

struct PingPongResult {
  std::vector<double> rtt_us;  // one per answered round trip
  uint64_t lost = 0;           // not answered within 200 ms
};
// Round trips until max_trips or `seconds` pass, after a short warm-up.
PingPongResult measure_udp_ping_pong(const NetworkPath& path, size_t size, size_t max_trips, double seconds);

// The child roles (server_roles.hpp).
int run_udp_sink(const RoleArgs& args, ControlChannel& channel);
int run_tcp_sink(const RoleArgs& args, ControlChannel& channel);
int run_udp_echo(const RoleArgs& args, ControlChannel& channel);

}  // namespace peerlink::bench
