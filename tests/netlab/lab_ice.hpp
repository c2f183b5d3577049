// The ICE configuration of a Host inside the NAT lab, shared by the lab's P2P tests and peerlink-bench.
#pragma once

#include "netlab/lab.hpp"
#include "peerlink/ice.hpp"

namespace peerlink::netlab {

// STUN and TURN (UDP and TCP) at the lab's static-user coturn; host candidates from the peer's eth0 only.
inline IceConfig lab_ice(const Lab& lab) {
  IceConfig ice;
  const auto server = lab.turn_server();
  const auto creds = lab.turn_credentials();
  ice.stun_servers.push_back({server.ip, server.port});
  for (TurnTransport t : {TurnTransport::kUdp, TurnTransport::kTcp})
    ice.turn_servers.push_back({server.ip, server.port, t, creds.username, creds.password});
  ice.interfaces_allow = {"eth0"};
  return ice;
}

}  // namespace peerlink::netlab
