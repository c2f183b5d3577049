// ICE candidates between the ICE layer and the signaling's wire form: the same fields, converted here so
// that neither layer depends on the other.
#pragma once

#include <vector>

#include "transport/ice/candidate.hpp"
#include "transport/rendezvous/blob.hpp"

namespace peerlink::host {

static_assert(uint8_t(ice::CandidateType::kRelayed) == uint8_t(rendezvous::CandidateType::kRelayed) &&
                  uint8_t(ice::CandidateTransport::kTcpPassive) ==
                      uint8_t(rendezvous::CandidateTransport::kTcpPassive),
              "the two candidate enumerations are numbered alike");

inline std::vector<rendezvous::Candidate> to_signaling(const std::vector<ice::Candidate>& in) {
  std::vector<rendezvous::Candidate> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    out[i].type = rendezvous::CandidateType(uint8_t(in[i].type));
    out[i].transport = rendezvous::CandidateTransport(uint8_t(in[i].transport));
    out[i].priority = in[i].priority;
    out[i].foundation = in[i].foundation;
    out[i].address = in[i].address;
  }
  return out;
}

inline std::vector<ice::Candidate> to_ice(const std::vector<rendezvous::Candidate>& in) {
  std::vector<ice::Candidate> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    out[i].type = ice::CandidateType(uint8_t(in[i].type));
    out[i].transport = ice::CandidateTransport(uint8_t(in[i].transport));
    out[i].priority = in[i].priority;
    out[i].foundation = in[i].foundation;
    out[i].address = in[i].address;
  }
  return out;
}

}  // namespace peerlink::host
