// peerlink next to kernel TCP through one bottleneck: two network namespaces joined by a veth pair, a
// token-bucket (tbf) of 80 Mbit/s with a 256 KB queue on the sending side, a peerlink connection and a TCP
// stream sending from a to b at the same time. Root only (it makes the namespaces).
#pragma once

namespace peerlink::bench {

// peerlink alone (BBR, then CUBIC); then for kernel TCP with CUBIC and with BBR (set per socket): TCP alone,
// and next to peerlink with each of its controllers. Each flow's goodput over `seconds` (at least 5) after
// 2 s of warm-up, and TCP's share of what both moved (target >= 25%: peerlink does not starve it).
void run_tcp_share(double seconds);

}  // namespace peerlink::bench
