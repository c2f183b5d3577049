// The Host scenarios: this process is the client, a server child (two_process.hpp) the other end, over
// loopback or between two network namespaces. Each prints its figures (one JSON line each) with the kernel
// baseline measured in the same run over the same path, and throws std::runtime_error when a run fails
// (figures measured before the failure are still printed).
#pragma once

#include <cstddef>

#include "two_process.hpp"

namespace peerlink::bench {

struct HostBenchOptions {
  double seconds = 3.0;         // each measured window (after a short warm-up)
  size_t connections = 1000;    // memory
  size_t connect_samples = 50;  // connect: fresh client Hosts
  NetworkPath path;
};

// Reliable 64 KiB messages; baselines a raw UDP blast of 1200-byte datagrams and kernel TCP.
void run_throughput(const HostBenchOptions& o);
// Reliable 64-byte messages per second, sent with send_batch; baseline a raw UDP blast of 64-byte datagrams.
void run_msgrate(const HostBenchOptions& o);
// 32-byte reliable no-Nagle ping-pong, p50 and p99; baseline a raw UDP ping-pong.
void run_rtt(const HostBenchOptions& o);
// connect() to the first reliable message delivered at the server, p50 and p99 over fresh client Hosts;
// baseline 2 raw UDP round trips + 1 ms.
void run_connect(const HostBenchOptions& o);
// VmRSS per idle connection on each side; baseline the core's heap bytes per idle connection.
void run_memory(const HostBenchOptions& o);

}  // namespace peerlink::bench
