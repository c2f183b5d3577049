// Signatures by a Host's identity key, which is an X25519 key (peerlink/identity.hpp): what the LAN beacon
// signs its records with, so that a record is accepted only from the holder of the key it names.
//
// X25519 keys cannot sign as they are. As Signal's XEdDSA does, the signature is an Ed25519 signature under
// the Edwards point that corresponds to the key's Montgomery u-coordinate (sign bit 0): anyone verifies it
// with the X25519 public key alone (a standard Ed25519 verification, OpenSSL's), and only the holder of the
// X25519 private key can make it. Signing uses the private scalar (clamped as X25519 uses it) with a fresh
// random nonce; the two sign ambiguities of the u-coordinate are resolved by checking the candidate
// signatures with the verifier itself, so what this returns always verifies.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace peerlink::lan {

using Signature = std::array<uint8_t, 64>;

// The Ed25519 public key (y with sign bit 0) for an X25519 public key; nullopt for the u-coordinates
// that have none (u = -1).
std::optional<std::array<uint8_t, 32>> edwards_key_of(const std::array<uint8_t, 32>& x25519_public);

// Signs `size` bytes with an X25519 private key; nullopt only if the platform's crypto fails.
std::optional<Signature> sign_with_identity(const std::array<uint8_t, 32>& x25519_private,
                                            const uint8_t* data, size_t size);

// Whether `signature` is one over the bytes by the holder of `x25519_public`.
bool verify_identity_signature(const std::array<uint8_t, 32>& x25519_public, const uint8_t* data, size_t size,
                               const Signature& signature);

}  // namespace peerlink::lan
