#include "identity_signature.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

namespace peerlink::lan {
namespace {

using Key32 = std::array<uint8_t, 32>;

struct BnFree {
  void operator()(BIGNUM* b) const { BN_clear_free(b); }
};
struct CtxFree {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bn bn() {
  return Bn(BN_secure_new());
}

Bn from_le(const uint8_t* bytes, size_t size) {
  return Bn(BN_lebin2bn(bytes, static_cast<int>(size), nullptr));
}

// p = 2^255 - 19 and q = 2^252 + 27742317777372353535851937790883648493, the field and the group order.
const BIGNUM* field_prime() {
  static BIGNUM* p = [] {
    BIGNUM* v = nullptr;
    BN_hex2bn(&v, "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed");
    return v;
  }();
  return p;
}
const BIGNUM* group_order() {
  static BIGNUM* q = [] {
    BIGNUM* v = nullptr;
    BN_hex2bn(&v, "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed");
    return v;
  }();
  return q;
}

Key32 clamp(Key32 k) {
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
  return k;
}

// u-coordinate of k·B (X25519 with the base point), k clamped as X25519 does.
std::optional<Key32> x25519_base(const Key32& k) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, k.data(), k.size()));
  Key32 u{};
  size_t len = u.size();
  if (!key || EVP_PKEY_get_raw_public_key(key.get(), u.data(), &len) != 1 || len != u.size())
    return std::nullopt;
  return u;
}

bool ed25519_verify(const Key32& edwards, const uint8_t* data, size_t size, const Signature& sig) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, edwards.data(), edwards.size()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!key || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data, size) == 1;
}

}  // namespace

std::optional<Key32> edwards_key_of(const Key32& x25519_public) {
  Key32 masked = x25519_public;
  masked[31] &= 127;  // RFC 7748 §5: the top bit of a u-coordinate is ignored
  std::unique_ptr<BN_CTX, CtxFree> ctx(BN_CTX_new());
  Bn u = from_le(masked.data(), masked.size()), num = bn(), den = bn(), y = bn();
  if (!ctx || !u || !num || !den || !y) return std::nullopt;
  // y = (u - 1) / (u + 1) mod p
  if (!BN_nnmod(u.get(), u.get(), field_prime(), ctx.get()) ||
      !BN_mod_sub(num.get(), u.get(), BN_value_one(), field_prime(), ctx.get()) ||
      !BN_mod_add(den.get(), u.get(), BN_value_one(), field_prime(), ctx.get()) || BN_is_zero(den.get()) ||
      !BN_mod_inverse(den.get(), den.get(), field_prime(), ctx.get()) ||
      !BN_mod_mul(y.get(), num.get(), den.get(), field_prime(), ctx.get()))
    return std::nullopt;
  Key32 out{};
  if (BN_bn2lebinpad(y.get(), out.data(), static_cast<int>(out.size())) != static_cast<int>(out.size()))
    return std::nullopt;
  out[31] &= 127;  // sign bit of x: 0
  return out;
}

std::optional<Signature> sign_with_identity(const Key32& x25519_private, const uint8_t* data, size_t size) {
  const std::optional<Key32> public_u = x25519_base(x25519_private);
  if (!public_u) return std::nullopt;
  const std::optional<Key32> a_enc = edwards_key_of(*public_u);
  if (!a_enc) return std::nullopt;

  // The nonce: a hash of the private key, the message and fresh randomness (a broken RNG alone does not
  // repeat it), clamped so that X25519 computes r·B for exactly this r.
  uint8_t noise[32];
  if (RAND_bytes(noise, sizeof noise) != 1) return std::nullopt;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  uint8_t digest[64];
  unsigned digest_len = 0;
  static const char kDomain[] = "peerlink identity signature nonce";
  if (!md || EVP_DigestInit_ex(md.get(), EVP_sha512(), nullptr) != 1 ||
      EVP_DigestUpdate(md.get(), kDomain, sizeof kDomain) != 1 ||
      EVP_DigestUpdate(md.get(), x25519_private.data(), x25519_private.size()) != 1 ||
      EVP_DigestUpdate(md.get(), data, size) != 1 || EVP_DigestUpdate(md.get(), noise, sizeof noise) != 1 ||
      EVP_DigestFinal_ex(md.get(), digest, &digest_len) != 1)
    return std::nullopt;
  Key32 r_bytes{};
  std::copy(digest, digest + 32, r_bytes.begin());
  r_bytes = clamp(r_bytes);
  OPENSSL_cleanse(digest, sizeof digest);
  const std::optional<Key32> r_u = x25519_base(r_bytes);
  if (!r_u) return std::nullopt;
  const std::optional<Key32> r_enc = edwards_key_of(*r_u);
  if (!r_enc) return std::nullopt;

  // h = SHA-512(R || A || M) mod q, as Ed25519 verification computes it.
  if (EVP_DigestInit_ex(md.get(), EVP_sha512(), nullptr) != 1 ||
      EVP_DigestUpdate(md.get(), r_enc->data(), 32) != 1 ||
      EVP_DigestUpdate(md.get(), a_enc->data(), 32) != 1 || EVP_DigestUpdate(md.get(), data, size) != 1 ||
      EVP_DigestFinal_ex(md.get(), digest, &digest_len) != 1)
    return std::nullopt;

  std::unique_ptr<BN_CTX, CtxFree> ctx(BN_CTX_secure_new());
  const Key32 a_bytes = clamp(x25519_private);
  Bn a = from_le(a_bytes.data(), a_bytes.size()), r = from_le(r_bytes.data(), r_bytes.size());
  Bn h = from_le(digest, sizeof digest), ha = bn(), s = bn(), minus_r = bn();
  OPENSSL_cleanse(r_bytes.data(), r_bytes.size());
  if (!ctx || !a || !r || !h || !ha || !s || !minus_r) return std::nullopt;
  BN_set_flags(a.get(), BN_FLG_CONSTTIME);
  BN_set_flags(r.get(), BN_FLG_CONSTTIME);
  if (!BN_nnmod(h.get(), h.get(), group_order(), ctx.get()) ||
      !BN_mod_sub(minus_r.get(), group_order(), r.get(), group_order(), ctx.get()))
    return std::nullopt;
  // The points with sign bit 0 are ±a·B and ±r·B: one of the four combinations is the signature.
  for (int a_sign = 0; a_sign < 2; ++a_sign) {
    if (!BN_mod_mul(ha.get(), h.get(), a.get(), group_order(), ctx.get())) return std::nullopt;
    if (a_sign && !BN_mod_sub(ha.get(), group_order(), ha.get(), group_order(), ctx.get()))
      return std::nullopt;
    for (const BIGNUM* nonce : {r.get(), minus_r.get()}) {
      if (!BN_mod_add(s.get(), nonce, ha.get(), group_order(), ctx.get())) return std::nullopt;
      Signature sig{};
      std::copy(r_enc->begin(), r_enc->end(), sig.begin());
      if (BN_bn2lebinpad(s.get(), sig.data() + 32, 32) != 32) return std::nullopt;
      if (ed25519_verify(*a_enc, data, size, sig)) return sig;
    }
  }
  return std::nullopt;
}

bool verify_identity_signature(const Key32& x25519_public, const uint8_t* data, size_t size,
                               const Signature& signature) {
  const std::optional<Key32> edwards = edwards_key_of(x25519_public);
  return edwards && ed25519_verify(*edwards, data, size, signature);
}

}  // namespace peerlink::lan
