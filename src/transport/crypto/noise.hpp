// The Noise protocol framework (revision 34) handshake, for the 25519 DH with ChaChaPoly or AESGCM and
// SHA256 or BLAKE2s. Every pattern of the spec's §7.4/§7.5 that the test vectors cover is supported, with
// psk modifiers; peerlink itself uses IK and XX (docs/PROTOCOL.md §4).
//
//   HandshakeConfig cfg;
//   cfg.pattern = NoisePattern::kIK; cfg.initiator = true; cfg.local_static = my_keys;
//   cfg.remote_static = their_public_key;
//   HandshakeState hs(cfg, rng);
//   std::vector<uint8_t> msg; hs.write_message(payload, len, msg);   // -> send
//   hs.read_message(reply, reply_len, payload_out);                  // <- receive
//   if (hs.complete()) { TransportKeys k = hs.split(); }
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "transport/crypto/aead.hpp"
#include "transport/crypto/hash.hpp"
#include "transport/crypto/random.hpp"
#include "transport/crypto/x25519.hpp"

namespace peerlink::crypto {

enum class NoisePattern : uint8_t { kNN, kNK, kNX, kKN, kKK, kKX, kXN, kXK, kXX, kIN, kIK, kIX };

struct HandshakeConfig {
  NoisePattern pattern = NoisePattern::kIK;
  // psk modifier positions (0 = psk0, 1 = psk1, ...); each needs the matching entry in psks.
  std::vector<int> psk_positions;
  std::vector<Key32> psks;
  AeadAlgorithm cipher = AeadAlgorithm::kChaChaPoly;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  bool initiator = true;
  std::vector<uint8_t> prologue;
  std::optional<X25519KeyPair> local_static;
  // OpenSSL's object for local_static's private key, when the caller keeps one across handshakes (an
  // Endpoint does, for its identity); it must be made from that key. Empty: the handshake makes its own.
  X25519Local local_static_object;
  // A key pair made ahead of time (Endpoint::give_ephemeral), or the test vectors' fixed one. It is
  // used for the first e token only; a pattern's further e tokens would get fresh ones.
  std::optional<X25519KeyPair> local_ephemeral;
  std::optional<Key32> remote_static;     // pre-message (e.g. the responder's key in IK)
  std::optional<Key32> remote_ephemeral;  // pre-message, for patterns that have one
  // DH(local_static, remote_static) computed earlier, for the ss token. Used only with remote_static as a
  // pre-message (the initiator's side of IK), so a peer can never choose the key it belongs to; it must be
  // the DH of exactly these two keys.
  std::optional<Key32> static_static;
};

// "Noise_IKpsk2_25519_ChaChaPoly_SHA256" and the like.
std::string noise_protocol_name(const HandshakeConfig& cfg);
// Parses such a name into pattern, psk positions, cipher and hash; false for anything unsupported.
bool parse_noise_protocol_name(const std::string& name, HandshakeConfig& cfg);

struct TransportKeys {
  Key32 initiator_to_responder{};
  Key32 responder_to_initiator{};
};

enum class HandshakeError : uint8_t {
  kNone = 0,
  kWrongTurn,      // write when it is the peer's turn to write, or the reverse
  kMissingKey,     // a key the pattern needs was not configured
  kTruncated,      // message shorter than its tokens
  kDecryptFailed,  // a static key or payload failed authentication (wrong key or tampering)
  kDhFailed,       // low-order point
  kTooLong,        // message above the Noise limit of 65535 bytes
  kAlreadyComplete,
};

const char* to_string(HandshakeError e);

class HandshakeState {
 public:
  HandshakeState(const HandshakeConfig& cfg, RandomSource& rng);

  HandshakeError write_message(const uint8_t* payload, size_t payload_len, std::vector<uint8_t>& out);
  HandshakeError read_message(const uint8_t* msg, size_t msg_len, std::vector<uint8_t>& payload_out);
  // Sets the key pair the next e token uses, as HandshakeConfig::local_ephemeral would have.
  void use_ephemeral(const X25519KeyPair& key_pair) { cfg_.local_ephemeral = key_pair; }

  bool complete() const;
  bool is_my_turn() const;  // true when the next operation is write_message
  // Valid once complete(): the two directions' keys (Noise Split()).
  TransportKeys split() const;
  const Digest& handshake_hash() const { return h_; }
  // The peer's static key once learned (from a pre-message or a handshake message).
  const std::optional<Key32>& remote_static() const { return rs_; }

 private:
  struct CipherState {
    std::optional<Key32> k;
    uint64_t n = 0;
  };
  void mix_hash(const uint8_t* data, size_t len);
  void mix_key(const uint8_t* ikm, size_t len);
  void mix_key_and_hash(const uint8_t* ikm, size_t len);
  void encrypt_and_hash(const uint8_t* pt, size_t len, std::vector<uint8_t>& out);
  bool decrypt_and_hash(const uint8_t* ct, size_t len, std::vector<uint8_t>& out);
  // kMissingKey if a key the token needs is absent, kDhFailed for a low-order result.
  HandshakeError dh(bool local_static, bool remote_static);

  HandshakeConfig cfg_;
  RandomSource& rng_;
  std::vector<std::vector<uint8_t>> message_tokens_;  // token codes per message, see noise.cpp
  size_t message_index_ = 0;
  Digest ck_{};
  Digest h_{};
  CipherState cs_;
  std::optional<X25519KeyPair> s_, e_;
  std::optional<Key32> rs_, re_;
  // OpenSSL's objects for the four keys, made at a key's first DH and kept for its second. Copies of this
  // state share them (they are immutable); each is reset with its key.
  X25519Local s_object_, e_object_;
  X25519Remote rs_object_, re_object_;
  HandshakeError error_ = HandshakeError::kNone;  // the first failure; sticky
};

// A Noise CipherState for transport messages after Split(); used by the test-vector tests. Data packets
// use Aead directly with packet numbers as nonces.
class NoiseCipher {
 public:
  NoiseCipher(AeadAlgorithm alg, const Key32& key) : aead_(alg, key) {}
  void encrypt(const uint8_t* pt, size_t len, std::vector<uint8_t>& out);
  bool decrypt(const uint8_t* ct, size_t len, std::vector<uint8_t>& out);

 private:
  Aead aead_;
  uint64_t n_ = 0;
};

}  // namespace peerlink::crypto
