#include "transport/crypto/x25519.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <memory>

namespace peerlink::crypto {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

PkeyPtr private_pkey(const Key32& private_key) {
  return PkeyPtr(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(), private_key.size()));
}

// A key object for derive() only. EVP_PKEY_new_raw_private_key() would also compute the public key, a second
// scalar multiplication that doubles the cost of every DH; supplying a placeholder public key skips it. The
// object never leaves x25519() and derive() reads only the private scalar.
PkeyPtr private_pkey_for_derive(const Key32& private_key) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  Key32 priv = private_key;
  Key32 placeholder_pub{};
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, priv.data(), priv.size()),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, placeholder_pub.data(),
                                        placeholder_pub.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* pkey = nullptr;
  const int ok = EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_KEYPAIR, params);
  OPENSSL_cleanse(priv.data(), priv.size());
  if (ok != 1) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  return PkeyPtr(pkey);
}

// No early exit: the shared secret is secret.
bool all_zero(const Key32& k) {
  uint8_t acc = 0;
  for (uint8_t b : k)
    acc |= b;
  return acc == 0;
}

}  // namespace

X25519KeyPair x25519_generate(RandomSource& rng) {
  Key32 priv;
  rng.fill(priv.data(), priv.size());
  X25519KeyPair kp = x25519_from_private(priv);
  OPENSSL_cleanse(priv.data(), priv.size());
  return kp;
}

X25519KeyPair x25519_from_private(const Key32& private_key) {
  X25519KeyPair kp;
  kp.private_key = private_key;
  PkeyPtr pkey = private_pkey(private_key);
  size_t len = kp.public_key.size();
  if (!pkey || EVP_PKEY_get_raw_public_key(pkey.get(), kp.public_key.data(), &len) != 1 ||
      len != kp.public_key.size()) {
    // Only an allocation failure gets here; an all-zero public key makes every later DH fail safely.
    kp.public_key.fill(0);
  }
  return kp;
}

bool x25519(const Key32& private_key, const Key32& peer_public, Key32& shared_out) {
  PkeyPtr local = private_pkey_for_derive(private_key);
  PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(), peer_public.size()));
  if (!local || !peer) return false;
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new(local.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1) {
    return false;
  }
  size_t len = shared_out.size();
  if (EVP_PKEY_derive(ctx.get(), shared_out.data(), &len) != 1 || len != shared_out.size()) {
    shared_out.fill(0);
    return false;
  }
  if (all_zero(shared_out)) return false;
  return true;
}

void wipe(Key32& secret) {
  OPENSSL_cleanse(secret.data(), secret.size());
}

void wipe(X25519KeyPair& key_pair) {
  wipe(key_pair.private_key);
}

}  // namespace peerlink::crypto
