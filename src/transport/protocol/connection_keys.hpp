// Packet protection keys of a connection: one AEAD per direction, key phases and key updates.
//
// Each direction has a secret; the AEAD key is the secret. A key update replaces a secret with
// HKDF(secret) and flips the key-phase bit in the data header. The receiver keeps the previous key for a
// few probe timeouts so reordered packets of the old phase still open.
#pragma once

#include <memory>

#include "transport/crypto/aead.hpp"
#include "transport/crypto/hash.hpp"
#include "transport/protocol/connection.hpp"

namespace peerlink::protocol {

inline crypto::Key32 next_key_secret(const crypto::Key32& secret) {
  static const uint8_t kLabel[] = {'p', 'e', 'e', 'r', 'l', 'i', 'n', 'k', ' ', 'k', 'u'};
  crypto::Digest ck;
  std::copy(secret.begin(), secret.end(), ck.begin());
  crypto::Digest out1, out2;
  crypto::noise_hkdf(crypto::HashAlgorithm::kSha256, ck, kLabel, sizeof kLabel, 2, &out1, &out2, nullptr);
  crypto::Key32 next;
  std::copy(out1.begin(), out1.end(), next.begin());
  return next;
}

struct Connection::Keys {
  Keys(crypto::AeadAlgorithm a, const crypto::Key32& send_key, const crypto::Key32& recv_key, Instant now)
      : alg(a),
        send_secret(send_key),
        recv_secret(recv_key),
        send(a, send_key),
        recv(a, recv_key),
        phase_started(now) {}

  crypto::AeadAlgorithm alg;
  crypto::Key32 send_secret;
  crypto::Key32 recv_secret;
  crypto::Aead send;
  crypto::Aead recv;
  std::unique_ptr<crypto::Aead> recv_prev;  // previous phase, until prev_discard
  bool send_phase = false;
  bool recv_phase = false;
  uint64_t send_phase_first_pn = 0;
  bool send_phase_acked = false;  // a packet of the current send phase was acknowledged
  uint64_t recv_phase_first_pn = 0;
  Instant phase_started;
  uint64_t packets_in_phase = 0;
  Instant prev_discard = kNever;

  // A key update of our sending direction (ours, or following the peer's): the next secret, the other
  // phase bit, from packet number next_pn on.
  void rotate_send(uint64_t next_pn, Instant now) {
    send_secret = next_key_secret(send_secret);
    send = crypto::Aead(alg, send_secret);
    send_phase = !send_phase;
    send_phase_first_pn = next_pn;
    send_phase_acked = false;
    packets_in_phase = 0;
    phase_started = now;
  }
};

}  // namespace peerlink::protocol
