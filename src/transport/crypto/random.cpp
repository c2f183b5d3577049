#include "transport/crypto/random.hpp"

#include <openssl/rand.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

namespace peerlink::crypto {

uint32_t RandomSource::next_u32() {
  uint8_t b[4];
  fill(b, sizeof(b));
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | b[i];
  return v;
}

uint64_t RandomSource::next_u64() {
  uint8_t b[8];
  fill(b, sizeof(b));
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | b[i];
  return v;
}

void SystemRandom::fill(uint8_t* out, size_t n) {
  while (n > 0) {
    // RAND_bytes takes an int length; split very large requests.
    const int chunk = n > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(n);
    if (RAND_bytes(out, chunk) != 1) {
      std::fputs("peerlink: OpenSSL RAND_bytes failed; refusing to continue without a CSPRNG\n", stderr);
      std::abort();
    }
    out += chunk;
    n -= static_cast<size_t>(chunk);
  }
}

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

SeededRandom::SeededRandom(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : state_)
    s = splitmix64(x);
}

// xoshiro256** (Blackman & Vigna).
uint64_t SeededRandom::next() {
  const uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

void SeededRandom::fill(uint8_t* out, size_t n) {
  while (n > 0) {
    uint64_t v = next();
    const size_t take = n < 8 ? n : 8;
    for (size_t i = 0; i < take; ++i) {
      out[i] = static_cast<uint8_t>(v);
      v >>= 8;
    }
    out += take;
    n -= take;
  }
}

}  // namespace peerlink::crypto
