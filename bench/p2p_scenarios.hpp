// Peer-to-peer scenarios through the NAT lab (tests/netlab): both Hosts in this process, each in the
// namespace of a peer behind a lab router, ICE through libnice with the lab's coturn for STUN and TURN
// (static user; UDP and TCP), signaling in-process. Root only (the lab makes network namespaces).
#pragma once

#include <cstddef>

namespace peerlink::bench {

struct P2PBenchOptions {
  double seconds = 3.0;  // throughput window
  size_t samples = 15;   // connect: fresh Host pairs per NAT pairing
};

// For each of the 15 pairings of {none, full-cone, port-restricted, symmetric, udp-blocked}: connect() to the
// first reliable message delivered at the peer, p50 and p99 over fresh Host pairs, the route taken, and the
// target of the issue (150 ms direct, 250 ms through TURN over UDP, 300 ms through TURN over TCP). Baseline:
// the median STUN round trip from the connecting peer to the lab's coturn, measured in the same run.
void run_p2p_connect(const P2PBenchOptions& o);

// Reliable 64 KiB goodput through the ICE path, for none x none (host candidates across the lab's internet
// bridge) and full-cone x port-restricted (server-reflexive, through two NATs). Baseline: a raw UDP blast
// of 1200-byte datagrams between the same two namespaces through the same NATs (target >= 0.70). For none x
// none also: the Host's direct UDP path between the same two peers (connect(Address), no ICE) as the
// baseline of the ICE host path (target >= 0.90) and of a TURN/UDP relay through the lab's coturn, relay
// candidates only (target >= 0.50), printed with coturn's own forwarding limit on that path: ChannelData
// between two allocations at rising paced rates, the most that came through, measured in the same run.
void run_p2p_throughput(const P2PBenchOptions& o);

}  // namespace peerlink::bench
