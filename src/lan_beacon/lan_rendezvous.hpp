// The LAN beacon's rendezvous datagrams: a signaling blob sent by unicast UDP from one discovered peer to
// another, authenticated to both identity keys and, when set, to the network key. Pure code, no I/O.
//
//   "PLLR" | version 1 | sender key (32) | receiver key (32) | counter (8, big-endian) | blob length (2) |
//   blob | tag (16)
//
// The tag is HMAC-SHA-256 (first 16 bytes) over everything before it, under a key both ends derive from
// their static X25519 keys: HMAC-SHA-256(network key, "peerlink lan rendezvous 1" || X25519(own private,
// other's public)). Only the holders of one of the two private keys (and of the network key) can make a
// tag, so a datagram that verifies came from the sender key it names (we are the other holder). The
// receiver key makes a datagram useless to anyone else and a reflected one (ours, sent back) is refused.
// The counter only grows per sender: a copy or an older datagram is refused (a replay).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "peerlink/identity.hpp"

namespace peerlink::lan {

inline constexpr size_t kRendezvousHeader = 4 + 1 + 32 + 32 + 8 + 2;
inline constexpr size_t kRendezvousTag = 16;

// Whether a datagram is meant to be a rendezvous datagram (its magic), as opposed to a DNS message.
bool looks_like_rendezvous(const uint8_t* data, size_t size);

struct SealedBlob {
  PublicKey sender{};
  uint64_t counter = 0;
  std::vector<uint8_t> blob;
};

// Both ends of rendezvous datagrams for one identity: seals blobs for peers and opens what peers sent,
// keeping the derived keys (bounded) and the newest counter seen per sender.
class RendezvousCrypto {
 public:
  RendezvousCrypto(const Identity& self, std::vector<uint8_t> network_key);

  // A datagram carrying `blob` to `peer`; nullopt when the key agreement fails (a low-order key).
  std::optional<std::vector<uint8_t>> seal(const PublicKey& peer, const uint8_t* blob, size_t size,
                                           uint64_t counter);

  enum class Refusal { kNone, kMalformed, kNotForUs, kBadTag, kReplayed };
  // Opens a datagram: the blob and its sender, or why not (`refusal`).
  std::optional<SealedBlob> open(const uint8_t* data, size_t size, Refusal* refusal);

 private:
  std::optional<std::vector<uint8_t>> key_for(const PublicKey& peer);

  Identity self_;
  std::vector<uint8_t> network_key_;
  std::map<PublicKey, std::vector<uint8_t>> keys_;  // per peer: the derived MAC key
  std::map<PublicKey, uint64_t> newest_;            // per sender: the newest counter accepted
};

}  // namespace peerlink::lan
