#include "transport/crypto/x25519.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <memory>
#include <utility>

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

// The key import context of X25519, one per thread: EVP_PKEY_CTX_new_from_name() looks the implementation up
// in OpenSSL's method store on every call. Made again on the next call if making it failed.
EVP_PKEY_CTX* import_context() {
  thread_local PkeyCtxPtr ctx;
  if (!ctx) {
    PkeyCtxPtr c(EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr));
    if (c && EVP_PKEY_fromdata_init(c.get()) == 1) ctx = std::move(c);
  }
  return ctx.get();
}

PkeyPtr import_key(int selection, OSSL_PARAM* params) {
  EVP_PKEY_CTX* ctx = import_context();
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata(ctx, &pkey, selection, params) != 1) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  return PkeyPtr(pkey);
}

// A key object for derive() only. EVP_PKEY_new_raw_private_key() would also compute the public key, a second
// scalar multiplication that doubles the cost of every DH; supplying a placeholder public key skips it. The
// object never leaves x25519() and derive() reads only the private scalar.
PkeyPtr private_key_for_derive(const Key32& private_key) {
  Key32 priv = private_key;
  Key32 placeholder_pub{};
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, priv.data(), priv.size()),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, placeholder_pub.data(),
                                        placeholder_pub.size()),
      OSSL_PARAM_construct_end()};
  PkeyPtr key = import_key(EVP_PKEY_KEYPAIR, params);
  wipe(priv);
  return key;
}

// Through the import context too: EVP_PKEY_new_raw_public_key() looks the key manager up on every call, which
// takes twice as long.
PkeyPtr public_key_object(const Key32& public_key) {
  Key32 pub = public_key;  // OSSL_PARAM wants a pointer it could write through
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size()),
                         OSSL_PARAM_construct_end()};
  return import_key(EVP_PKEY_PUBLIC_KEY, params);
}

// No early exit: the shared secret is secret.
bool all_zero(const Key32& k) {
  uint8_t acc = 0;
  for (uint8_t b : k)
    acc |= b;
  return acc == 0;
}

constexpr Key32 kBasePoint = {9};

// The base point's key object, made once for every key generation (X25519Remote is immutable, so threads
// share it). Empty only if OpenSSL could not make it; callers then make their own.
const X25519Remote& base_point() {
  static const X25519Remote base(kBasePoint);
  return base;
}

// The public key is X25519(private, 9) (RFC 7748, section 6.1), made by the same ladder as every DH: 32 us
// (on the machine this was first measured on), where OpenSSL's own derivation
// (EVP_PKEY_new_raw_private_key) takes 41 us. Only an allocation failure fails here; an all-zero public key
// makes every later DH fail safely.
Key32 public_key_of(const X25519Local& local) {
  Key32 pub{};
  const X25519Remote& base = base_point();
  if (!x25519(local, base.empty() ? X25519Remote(kBasePoint) : base, pub)) pub.fill(0);
  return pub;
}

}  // namespace

X25519Object::X25519Object(evp_pkey_st* key) {
  if (key) key_.reset(key, PkeyFree{});
}

X25519Local::X25519Local(const Key32& private_key)
    : X25519Object(private_key_for_derive(private_key).release()) {}

X25519Remote::X25519Remote(const Key32& public_key) : X25519Object(public_key_object(public_key).release()) {}

X25519KeyPair x25519_generate(RandomSource& rng) {
  X25519Local unused;
  return x25519_generate(rng, unused);
}

X25519KeyPair x25519_generate(RandomSource& rng, X25519Local& local_out) {
  X25519KeyPair kp;
  rng.fill(kp.private_key.data(), kp.private_key.size());
  local_out = X25519Local(kp.private_key);
  kp.public_key = public_key_of(local_out);
  return kp;
}

X25519KeyPair x25519_from_private(const Key32& private_key) {
  X25519KeyPair kp;
  kp.private_key = private_key;
  kp.public_key = public_key_of(X25519Local(private_key));
  return kp;
}

bool x25519(const Key32& private_key, const Key32& peer_public, Key32& shared_out) {
  return x25519(X25519Local(private_key), X25519Remote(peer_public), shared_out);
}

bool x25519(const X25519Local& local, const X25519Remote& peer, Key32& shared_out) {
  if (!local.key_ || !peer.key_) return false;
  // The peer's key is not validated: OpenSSL's check of an X25519 public key only asks that there be one
  // (RFC 7748 takes any 32 bytes), and a low-order key is caught below by its all-zero result.
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new(local.key_.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.key_.get(), 0) != 1) {
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
