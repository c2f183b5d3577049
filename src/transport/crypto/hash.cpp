#include "transport/crypto/hash.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace peerlink::crypto {
namespace {

// Fetched once: EVP_sha256() & co. would make OpenSSL 3 look the implementation up on every init.
const EVP_MD* md_for(HashAlgorithm alg) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* const blake2s = EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr);
  const EVP_MD* md = alg == HashAlgorithm::kSha256 ? sha256 : blake2s;
  if (md == nullptr) {
    std::fputs("peerlink: OpenSSL lacks SHA-256 or BLAKE2s-256\n", stderr);
    std::abort();
  }
  return md;
}

struct Span {
  const uint8_t* data;
  size_t len;
};

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Incremental hash; a failure inside OpenSSL here means memory exhaustion or a broken library, and
// returning a wrong digest silently would be worse than stopping.
class Hasher {
 public:
  explicit Hasher(HashAlgorithm alg) : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md_for(alg), nullptr) != 1) fail();
  }
  void update(const uint8_t* data, size_t len) {
    if (len > 0 && EVP_DigestUpdate(ctx_.get(), data, len) != 1) fail();
  }
  Digest finish() {
    Digest d{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), d.data(), &len) != 1 || len != d.size()) fail();
    return d;
  }

 private:
  [[noreturn]] static void fail() {
    std::fputs("peerlink: OpenSSL digest operation failed\n", stderr);
    std::abort();
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx_;
};

// RFC 2104 over any 64-byte-block hash. Written out rather than using OpenSSL's HMAC because that one
// does not accept BLAKE2s with the block size Noise requires.
Digest hmac_parts(HashAlgorithm alg, const uint8_t* key, size_t key_len, const Span* parts, size_t n_parts) {
  uint8_t block[kHashBlockLength] = {};
  if (key_len > kHashBlockLength) {
    const Digest kd = hash(alg, key, key_len);
    for (size_t i = 0; i < kd.size(); ++i)
      block[i] = kd[i];
  } else {
    for (size_t i = 0; i < key_len; ++i)
      block[i] = key[i];
  }

  uint8_t pad[kHashBlockLength];
  for (size_t i = 0; i < kHashBlockLength; ++i)
    pad[i] = block[i] ^ 0x36;
  Hasher inner(alg);
  inner.update(pad, sizeof(pad));
  for (size_t i = 0; i < n_parts; ++i)
    inner.update(parts[i].data, parts[i].len);
  Digest inner_digest = inner.finish();

  for (size_t i = 0; i < kHashBlockLength; ++i)
    pad[i] = block[i] ^ 0x5c;
  Hasher outer(alg);
  outer.update(pad, sizeof(pad));
  outer.update(inner_digest.data(), inner_digest.size());
  Digest out = outer.finish();

  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(pad, sizeof(pad));
  OPENSSL_cleanse(inner_digest.data(), inner_digest.size());
  return out;
}

}  // namespace

Digest hash(HashAlgorithm alg, const uint8_t* data, size_t len) {
  Hasher h(alg);
  h.update(data, len);
  return h.finish();
}

Digest hash2(HashAlgorithm alg, const uint8_t* a, size_t alen, const uint8_t* b, size_t blen) {
  Hasher h(alg);
  h.update(a, alen);
  h.update(b, blen);
  return h.finish();
}

Digest hmac(HashAlgorithm alg, const uint8_t* key, size_t key_len, const uint8_t* data, size_t len) {
  const Span part{data, len};
  return hmac_parts(alg, key, key_len, &part, 1);
}

void noise_hkdf(HashAlgorithm alg, const Digest& chaining_key, const uint8_t* ikm, size_t ikm_len,
                int num_outputs, Digest* out1, Digest* out2, Digest* out3) {
  Digest temp_key = hmac(alg, chaining_key.data(), chaining_key.size(), ikm, ikm_len);
  const uint8_t one = 0x01;
  const Digest o1 = hmac(alg, temp_key.data(), temp_key.size(), &one, 1);
  const uint8_t two = 0x02;
  const Span parts2[] = {{o1.data(), o1.size()}, {&two, 1}};
  const Digest o2 = hmac_parts(alg, temp_key.data(), temp_key.size(), parts2, 2);
  if (out1 != nullptr) *out1 = o1;
  if (out2 != nullptr) *out2 = o2;
  if (num_outputs >= 3 && out3 != nullptr) {
    const uint8_t three = 0x03;
    const Span parts3[] = {{o2.data(), o2.size()}, {&three, 1}};
    *out3 = hmac_parts(alg, temp_key.data(), temp_key.size(), parts3, 2);
  }
  OPENSSL_cleanse(temp_key.data(), temp_key.size());
}

bool equal_ct(const uint8_t* a, const uint8_t* b, size_t n) {
  return CRYPTO_memcmp(a, b, n) == 0;
}

}  // namespace peerlink::crypto
