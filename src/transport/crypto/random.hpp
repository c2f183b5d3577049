// Sources of random bytes. The protocol core takes one by reference so the simulator can run it
// deterministically from a seed; everything else uses SystemRandom (OpenSSL's CSPRNG).
#pragma once

#include <cstddef>
#include <cstdint>

namespace peerlink::crypto {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void fill(uint8_t* out, size_t n) = 0;
  uint32_t next_u32();
  uint64_t next_u64();
};

class SystemRandom final : public RandomSource {
 public:
  void fill(uint8_t* out, size_t n) override;  // aborts if the OS CSPRNG fails: there is no safe fallback
};

// Deterministic, NOT cryptographically secure: for simulations and tests only.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed);
  void fill(uint8_t* out, size_t n) override;
  uint64_t next();  // the next 64 bits of xoshiro256**

 private:
  uint64_t state_[4];
};

}  // namespace peerlink::crypto
