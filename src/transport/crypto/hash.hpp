// Hashes, HMAC and the Noise HKDF (Noise spec §4.3), over SHA-256 or BLAKE2s-256.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace peerlink::crypto {

enum class HashAlgorithm : uint8_t { kSha256, kBlake2s };

inline constexpr size_t kHashLength = 32;  // both algorithms produce 32 bytes
inline constexpr size_t kHashBlockLength = 64;
using Digest = std::array<uint8_t, kHashLength>;

Digest hash(HashAlgorithm alg, const uint8_t* data, size_t len);
// hash(a || b) without building the concatenation.
Digest hash2(HashAlgorithm alg, const uint8_t* a, size_t alen, const uint8_t* b, size_t blen);
Digest hmac(HashAlgorithm alg, const uint8_t* key, size_t key_len, const uint8_t* data, size_t len);

// Noise HKDF: num_outputs is 2 or 3; outputs beyond num_outputs are left untouched.
void noise_hkdf(HashAlgorithm alg, const Digest& chaining_key, const uint8_t* ikm, size_t ikm_len,
                int num_outputs, Digest* out1, Digest* out2, Digest* out3);

// Constant-time comparison.
bool equal_ct(const uint8_t* a, const uint8_t* b, size_t n);

}  // namespace peerlink::crypto
