// LAN discovery on LANs in network namespaces (the tests' LAN lab, tests/lan/lan_lab.hpp): only in builds
// with the tests, and skipped without root.
#pragma once

#include <cstddef>
#include <string>

#include "p2p_scale.hpp"

namespace peerlink::bench {

struct LanBenchOptions {
  size_t samples = 10;  // cold starts measured per peer count
};

// lan-discover: N peers (3, then 20) on one LAN start their beacons at one moment; the time until every
// peer sees every other, p50/p99 over fresh identities (target p50 <= 50 ms). Baseline in the same run:
// every peer sends one datagram to the mDNS group at one moment, until every peer has all the others'
// (the LAN's own fan-out, with nothing of the protocol). IPv4 only. lan-discover-hosts: the same with whole
// peers, a Host with its LanBeacon made on a thread per host at one moment. Then lan-steady-multicast: the
// multicast datagrams a minute one peer sends per interface once started, from the engine's timers on a
// virtual clock (target <= 2). Returns false (after saying why on stderr) when it cannot run.
bool run_lan_discover(const LanBenchOptions& o);

// lan-connect: a responder (examples/lan_peer, `lan-beacon-peer`) runs on one host of a LAN; on another,
// the same program is started with --connect, again and again: the time from starting the process until
// it exits with the echo of its first reliable message to the peer it discovered (discovery, rendezvous
// through the beacon, ICE on host candidates, handshake, one round trip), p50/p99 (target p50 <= 150 ms).
// Baseline in the same run: starting the same program with --help (process start and exit alone).
// `peer_program` is the path of lan-beacon-peer.
bool run_lan_connect(const LanBenchOptions& o, const std::string& peer_program);

// p2p-scale-lan: p2p-scale (p2p_scale.hpp) with the LAN beacon as the signaling, between two hosts of a LAN
// in namespaces; baseline the same connections over direct UDP between the same two hosts.
bool run_p2p_scale_lan(const P2PScaleOptions& o);

}  // namespace peerlink::bench
