// Handshake state a Connection holds until its keys are confirmed, then frees.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "peerlink/identity.hpp"
#include "transport/crypto/noise.hpp"
#include "transport/protocol/packet.hpp"
#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

struct HandshakeContext {
  HandshakeContext(const crypto::HandshakeConfig& cfg, crypto::RandomSource& rng)
      : noise(std::make_unique<crypto::HandshakeState>(cfg, rng)) {}

  // A pointer so a trial copy can read an untrusted message and replace it only on success.
  std::unique_ptr<crypto::HandshakeState> noise;
  HandshakePattern pattern = HandshakePattern::kIK;
  CipherSuiteId suite = CipherSuiteId::kChaChaPoly;
  std::optional<PublicKey> expected_peer_key;
  std::vector<uint8_t> initiation_noise;  // initiator: message 1, resent unchanged
  std::vector<uint8_t> response_noise;    // responder: message 2, resent unchanged
  std::vector<uint8_t> finish_noise;      // initiator (XX): message 3, resent until confirmed
  std::vector<uint8_t> peer_params;       // transport parameters from the peer's payload
  std::array<uint8_t, kCookieSize> cookie{};
  bool has_cookie = false;
  uint32_t retries_received = 0;
  uint32_t retransmits = 0;
  Instant next_retransmit = kNever;
  bool send_now = false;
};

inline crypto::AeadAlgorithm to_aead(CipherSuiteId s) {
  return s == CipherSuiteId::kAesGcm ? crypto::AeadAlgorithm::kAesGcm : crypto::AeadAlgorithm::kChaChaPoly;
}
inline CipherSuiteId to_suite(crypto::AeadAlgorithm a) {
  return a == crypto::AeadAlgorithm::kAesGcm ? CipherSuiteId::kAesGcm : CipherSuiteId::kChaChaPoly;
}

// The Noise prologue binds the protocol version, suite and pattern, so a downgrade of any of them makes
// the handshake fail.
inline std::vector<uint8_t> handshake_prologue(CipherSuiteId suite, HandshakePattern pattern) {
  std::vector<uint8_t> p = {'p', 'e', 'e', 'r', 'l', 'i', 'n', 'k', '/', '0' + kProtocolVersion};
  p.push_back(uint8_t(suite));
  p.push_back(uint8_t(pattern));
  return p;
}

}  // namespace peerlink::protocol
