// X25519 Diffie-Hellman (RFC 7748) on OpenSSL.
#pragma once

#include <array>
#include <cstdint>

#include "transport/crypto/random.hpp"

namespace peerlink::crypto {

using Key32 = std::array<uint8_t, 32>;

struct X25519KeyPair {
  Key32 private_key{};
  Key32 public_key{};
};

X25519KeyPair x25519_generate(RandomSource& rng);
// Derives the public key; any 32 bytes are a valid private key (clamping is part of X25519).
X25519KeyPair x25519_from_private(const Key32& private_key);
// False if OpenSSL fails or the result is all zeros (a low-order public key).
bool x25519(const Key32& private_key, const Key32& peer_public, Key32& shared_out);

// Overwrites secret key material (OPENSSL_cleanse: not optimised away) before its memory is let go.
void wipe(Key32& secret);
void wipe(X25519KeyPair& key_pair);  // the private key; the public one is not secret

}  // namespace peerlink::crypto
