// AEAD ciphers for Noise and for data packets: ChaCha20-Poly1305 and AES-256-GCM, with the nonce formats
// of the Noise spec (§5.1, §12): 4 zero bytes followed by the 64-bit counter, little-endian for ChaChaPoly,
// big-endian for AESGCM. 16-byte tags.
//
// An Aead object keeps its OpenSSL contexts keyed, so sealing a packet costs one nonce set-up plus the
// cipher itself. Not thread-safe: one object per direction per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "transport/crypto/x25519.hpp"

namespace peerlink::crypto {

enum class AeadAlgorithm : uint8_t { kChaChaPoly, kAesGcm };

inline constexpr size_t kAeadTagLength = 16;

// True when the CPU has AES instructions (AES-NI/PCLMUL on x86, the crypto extension on ARM): then
// AES-256-GCM is the faster choice.
bool cpu_has_aes();

class Aead {
 public:
  Aead(AeadAlgorithm alg, const Key32& key);
  ~Aead();
  Aead(Aead&&) noexcept;
  Aead& operator=(Aead&&) noexcept;
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  AeadAlgorithm algorithm() const { return alg_; }

  // Writes len bytes of ciphertext followed by the tag to out (out may equal in). Returns len + 16.
  size_t seal(uint64_t nonce, const uint8_t* ad, size_t ad_len, const uint8_t* in, size_t len, uint8_t* out);
  // A piece of plaintext that seal_gathered() reads from where it lies, for the bytes [at, at + len) of the
  // buffer it seals.
  struct Source {
    size_t at;
    const uint8_t* data;
    size_t len;
  };
  // Seals buf[0, len) in place, except that the bytes a source covers are read from the source: with
  // AES-GCM one pass over each byte instead of a copy into buf and a second pass to seal it
  // (ChaCha20-Poly1305 copies them in first, which is faster there). Sources are in order of `at`, do not
  // overlap, lie within [0, len) and do not overlap buf. Writes the tag to buf + len; returns len + 16.
  size_t seal_gathered(uint64_t nonce, const uint8_t* ad, size_t ad_len, uint8_t* buf, size_t len,
                       const Source* sources, size_t source_count);
  // in holds ciphertext + tag (len >= 16). Writes len - 16 bytes of plaintext to out (out may equal in).
  // False if authentication fails; out is then unspecified.
  bool open(uint64_t nonce, const uint8_t* ad, size_t ad_len, const uint8_t* in, size_t len, uint8_t* out);

 private:
  struct Contexts;
  AeadAlgorithm alg_;
  std::unique_ptr<Contexts> ctx_;
};

}  // namespace peerlink::crypto
