// Feeds arbitrary bytes to a responder's Noise handshake: IK message 1, and XX messages 1 and 3 (after a real
// message 2). Must never crash, hang or read out of bounds, whatever the input.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "transport/crypto/noise.hpp"

namespace {

using peerlink::crypto::HandshakeConfig;
using peerlink::crypto::HandshakeError;
using peerlink::crypto::HandshakeState;
using peerlink::crypto::NoisePattern;
using peerlink::crypto::SeededRandom;
using peerlink::crypto::x25519_generate;

HandshakeConfig responder_config(NoisePattern pattern) {
  SeededRandom keys(2024);  // fixed keys so that crashes reproduce
  HandshakeConfig cfg;
  cfg.pattern = pattern;
  cfg.initiator = false;
  cfg.prologue = {'p', 'e', 'e', 'r', 'l', 'i', 'n', 'k'};
  cfg.local_static = x25519_generate(keys);
  return cfg;
}

void fuzz_ik(const uint8_t* data, size_t size) {
  static const HandshakeConfig cfg = responder_config(NoisePattern::kIK);
  SeededRandom rng(1);
  HandshakeState responder(cfg, rng);
  std::vector<uint8_t> payload, reply;
  if (responder.read_message(data, size, payload) == HandshakeError::kNone) {
    responder.write_message(payload.data(), payload.size(), reply);
  }
}

// The first input byte splits the rest into message 1 and message 3.
void fuzz_xx(const uint8_t* data, size_t size) {
  static const HandshakeConfig cfg = responder_config(NoisePattern::kXX);
  if (size == 0) return;
  size_t split = data[0];
  ++data;
  --size;
  if (split > size) split = size;
  SeededRandom rng(1);
  HandshakeState responder(cfg, rng);
  std::vector<uint8_t> payload, msg2;
  if (responder.read_message(data, split, payload) != HandshakeError::kNone) return;
  if (responder.write_message(payload.data(), payload.size(), msg2) != HandshakeError::kNone) return;
  if (responder.read_message(data + split, size - split, payload) == HandshakeError::kNone &&
      responder.complete()) {
    (void)responder.split();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_ik(data, size);
  fuzz_xx(data, size);
  return 0;
}
