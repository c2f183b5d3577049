// Simulated bad networks for testing an application: loss, lag, jitter, reordering, duplication and a rate
// limit, applied by the Host to its own datagrams on send and/or on receive (the idea of
// GameNetworkingSockets' FakePacket* settings). All zero (the default) means off, at no cost.
//
//   peerlink::HostConfig config;
//   config.simulation.send.loss_percent = 5;                          // 5 % of outgoing datagrams vanish
//   config.simulation.send.lag = std::chrono::milliseconds(40);       // +40 ms one way
//   config.simulation.receive.jitter = std::chrono::milliseconds(10); // +0..10 ms, so some arrive reordered
//
// Thread-safety: a plain value, copied into the Host when it is created.
#pragma once

#include <chrono>
#include <cstdint>

namespace peerlink {

// Impairments of one direction. They apply in this order: loss, rate limit, lag + jitter, reordering,
// duplication.
struct NetworkImpairment {
  double loss_percent = 0;  // 0–100: datagrams dropped at random
  // Token bucket: datagrams beyond the rate wait in a queue of at most rate_limit_queue_bytes, then are
  // dropped (like a router's drop-tail queue). 0 = unlimited.
  uint64_t rate_limit_bytes_per_second = 0;
  uint64_t rate_limit_burst_bytes = 16 * 1024;
  uint64_t rate_limit_queue_bytes = 256 * 1024;
  std::chrono::microseconds lag{0};     // added to every datagram
  std::chrono::microseconds jitter{0};  // plus a uniformly random 0..jitter per datagram (reorders)
  double reorder_percent = 0;           // 0–100: datagrams held back an extra reorder_lag
  std::chrono::microseconds reorder_lag{std::chrono::milliseconds(10)};
  double duplicate_percent = 0;  // 0–100: datagrams sent twice, the copy after up to duplicate_lag_max
  std::chrono::microseconds duplicate_lag_max{std::chrono::milliseconds(10)};

  bool active() const {
    return loss_percent > 0 || rate_limit_bytes_per_second > 0 || lag.count() > 0 || jitter.count() > 0 ||
           reorder_percent > 0 || duplicate_percent > 0;
  }
};

struct NetworkSimulation {
  NetworkImpairment send;     // applied to datagrams this Host sends
  NetworkImpairment receive;  // applied to datagrams this Host receives, before it processes them
  uint64_t seed = 0;          // 0: random; otherwise the same seed gives the same drops and delays

  bool active() const { return send.active() || receive.active(); }
};

}  // namespace peerlink
