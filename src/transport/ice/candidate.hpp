// An ICE candidate as the ICE layer gathers and checks it (RFC 8445 §5.1): what the signaling carries to
// the peer, in the ICE layer's own terms. The signaling's wire form (rendezvous::Candidate) is converted
// to and from this by the Host, so neither layer depends on the other.
#pragma once

#include <cstdint>
#include <string>

#include "peerlink/address.hpp"

namespace peerlink::ice {

enum class CandidateType : uint8_t { kHost = 0, kServerReflexive = 1, kPeerReflexive = 2, kRelayed = 3 };
enum class CandidateTransport : uint8_t { kUdp = 0, kTcpActive = 1, kTcpPassive = 2 };

struct Candidate {
  CandidateType type = CandidateType::kHost;
  CandidateTransport transport = CandidateTransport::kUdp;
  uint32_t priority = 0;
  std::string foundation;  // 1–32 ICE characters
  Address address;         // IPv4 or IPv6 with a port (9 for an active TCP candidate, RFC 6544)

  bool operator==(const Candidate& o) const {
    return type == o.type && transport == o.transport && priority == o.priority &&
           foundation == o.foundation && address == o.address;
  }
};

}  // namespace peerlink::ice
