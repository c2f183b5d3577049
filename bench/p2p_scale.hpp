// p2p-scale: many peer-to-peer connections at once between two Hosts of this process, over loopback.
#pragma once

#include <cstddef>
#include <vector>

namespace peerlink::bench {

struct P2PScaleOptions {
  std::vector<size_t> connections = {100, 1000};
};

// For each N: two Hosts (in-process signaling, ICE on the loopback interface) with nothing else to do; one
// connects N times to the other at one moment. Prints the time until all N are connected (target: 1,000
// within 10 s), the resident memory and the file descriptors per connection and side, measured while all
// are open (target <= 64 KiB), and how many failed. Baseline in the same run: the same N connections
// between the same two Hosts over direct UDP (connect(Address) to a listen socket), where no ICE runs.
// Raises the soft descriptor limit to the hard one first; returns false when a run could not be made.
bool run_p2p_scale(const P2PScaleOptions& o);

}  // namespace peerlink::bench
