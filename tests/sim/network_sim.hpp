// A deterministic network simulator for the sans-I/O core: endpoints exchange datagrams over simulated
// links with delay, jitter, loss, duplication, reordering, corruption, bandwidth limits with a drop-tail
// queue, MTU limits and blackhole periods, all on a simulated clock and driven by one seed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <vector>

#include "transport/crypto/random.hpp"
#include "transport/protocol/endpoint.hpp"

namespace peerlink::sim {

using protocol::Duration;
using protocol::Instant;

struct LinkConfig {
  Duration delay = std::chrono::milliseconds(10);  // one way
  Duration jitter{};                               // uniform extra delay in [0, jitter]
  double loss = 0;                                 // probability per datagram
  double duplicate = 0;
  double reorder = 0;  // probability a datagram is held back by reorder_delay
  Duration reorder_delay = std::chrono::milliseconds(5);
  double corrupt = 0;                                   // flip one byte of the encrypted part of data packets
  uint64_t bandwidth_bps = 0;                           // 0 = unlimited
  size_t queue_bytes = 0;                               // drop-tail buffer at the bottleneck (0 = unlimited)
  size_t mtu = 65535;                                   // larger datagrams are dropped
  std::vector<std::pair<Instant, Instant>> blackholes;  // everything dropped in [first, second)
};

struct LinkStats {
  uint64_t sent = 0, delivered = 0, lost = 0, queue_dropped = 0, duplicated = 0, corrupted = 0, too_big = 0;
  uint64_t bytes_delivered = 0;
  Duration max_queue_delay{};
  double queue_delay_sum_s = 0;  // for the mean
};

class NetworkSim {
 public:
  explicit NetworkSim(uint64_t seed);

  // Adds an endpoint with its own deterministic randomness; returns its node index (= its address).
  size_t add_node(const protocol::EndpointConfig& cfg, const Identity& id);
  protocol::Endpoint& endpoint(size_t node) { return *nodes_[node].endpoint; }
  protocol::PathAddress address(size_t node) const { return protocol::PathAddress::from_u64(node + 1); }
  // Links are directional. Several directions may share one bottleneck (same `shared_queue` id >= 0).
  void set_link(size_t from, size_t to, const LinkConfig& cfg, int shared_queue = -1);
  LinkConfig& link(size_t from, size_t to);
  const LinkStats& link_stats(size_t from, size_t to);
  // Inject a raw datagram as if `from` had sent it (for spoofing and garbage tests).
  void inject(size_t from_address_node, size_t to, std::vector<uint8_t> datagram, Duration delay = {});

  // Called with every datagram delivered (after impairments), e.g. to capture packets for replay tests.
  void set_tap(std::function<void(size_t from, size_t to, const std::vector<uint8_t>& datagram)> tap) {
    tap_ = std::move(tap);
  }

  Instant now() const { return now_; }
  // Runs until `until` or until `done()` returns true (checked after every step); returns done().
  // on_step runs after each step: the place for application logic (accept, send, read).
  bool run_until(Instant until, const std::function<bool()>& done = {},
                 const std::function<void()>& on_step = {});
  bool run_for(Duration d, const std::function<bool()>& done = {},
               const std::function<void()>& on_step = {}) {
    return run_until(now_ + d, done, on_step);
  }
  uint64_t seed() const { return seed_; }

 private:
  struct Node {
    std::unique_ptr<crypto::SeededRandom> rng;
    std::unique_ptr<protocol::Endpoint> endpoint;
  };
  struct InFlight {
    Instant at;
    uint64_t seq;
    size_t from, to;
    std::vector<uint8_t> data;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  struct Queue {
    Instant free_at{};  // when the bottleneck finishes serialising what it holds
  };
  struct Link {
    LinkConfig cfg;
    LinkStats stats;
    int shared_queue = -1;
    Queue own;
  };

  void transmit(size_t from, size_t to, std::vector<uint8_t> data);
  void flush_node(size_t n);
  Link& link_ref(size_t from, size_t to);
  double uniform();

  uint64_t seed_;
  crypto::SeededRandom rng_;
  Instant now_{};
  uint64_t seq_ = 0;
  std::vector<Node> nodes_;
  std::map<std::pair<size_t, size_t>, Link> links_;
  std::function<void(size_t, size_t, const std::vector<uint8_t>&)> tap_;
  std::map<int, Queue> shared_queues_;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<InFlight>> in_flight_;
};

}  // namespace peerlink::sim
