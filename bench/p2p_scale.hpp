// p2p-scale: many peer-to-peer connections at once between two Hosts of this process, over loopback.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "peerlink/host.hpp"

namespace peerlink::bench {

struct P2PScaleOptions {
  std::vector<size_t> connections = {100, 1000};
};

// For each N: two Hosts (in-process signaling, ICE on the loopback interface) with nothing else to do; one
// connects N times to the other at one moment. Prints the time until all N are connected (target: 1,000
// within 10 s), the resident memory and the file descriptors per connection and side, measured while all
// are open (target <= 64 KiB), how many failed, and the ICE restarts in the meantime. Baseline in the same
// run: the same N connections between the same two Hosts over direct UDP (connect(Address) to a listen
// socket), where no ICE runs. Raises the soft descriptor limit to the hard one first; returns false when a
// run could not be made.
bool run_p2p_scale(const P2PScaleOptions& o);

// What the variants share (the LAN one is in lan_scenarios.cpp).
struct ScaleOutcome {
  double seconds = 0;  // until every connect() had its outcome
  size_t connected = 0, failed = 0;
  double rss_per_side = 0, fds_per_side = 0;  // per connection, averaged over the two Hosts
  uint64_t ice_restarts = 0;                  // both Hosts, from the start until all were connected
  std::string first_failure;
};
// The outcomes of the connecting Host's connections, from its connection callback.
class ScaleTally {
 public:
  void count(Host& host);  // sets host's connection callback
  void fail(const std::string& why);
  size_t connected() const { return connected_; }
  size_t failed() const { return failed_; }
  std::string first_failure() const;

 private:
  std::atomic<size_t> connected_{0}, failed_{0};
  mutable std::mutex mutex_;
  std::string first_failure_;
};
// Calls connect() n times at once, waits (at most 120 s) until each connection has an outcome; the
// process's RSS and descriptors are compared before and after, per connection and side (two Hosts).
ScaleOutcome measure_connect_many(size_t n, ScaleTally& tally,
                                  const std::function<Result<ConnectionHandle>()>& connect);
void raise_descriptor_limit();  // soft to hard
void print_scale(const std::string& scenario, size_t n, const ScaleOutcome& p2p, const ScaleOutcome& baseline,
                 const std::string& signaling, const std::string& baseline_name);

}  // namespace peerlink::bench
