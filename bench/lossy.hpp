// Congestion control on impaired paths, through HostConfig::simulation: two Hosts in this process over
// loopback, each impairing what it sends. Baselines: the simulated bottleneck's rate, and for the jitter
// case the same transfer without jitter, in the same run.
#pragma once

#include <cstdint>

namespace peerlink::bench {

struct LossyBenchOptions {
  uint64_t bytes = 10'000'000;  // moved per case
  double max_seconds = 20;      // per case; a slower transfer reports what arrived by then
};

// With BBR (the default) and then CUBIC: reliable 64 KiB messages over a 10 MB/s bottleneck with 40 ms of
// round trip at 0 %, 1 % (target >= 0.70 of the bottleneck) and 5 % random loss on the data direction; then
// over the same bottleneck with no added lag, without and with 3 ms of jitter plus 5 % reordering and 5 %
// duplication (target >= 0.50 of the jitter-free rate).
void run_lossy(const LossyBenchOptions& o);

}  // namespace peerlink::bench
