// X25519 Diffie-Hellman (RFC 7748) on OpenSSL.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "transport/crypto/random.hpp"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

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

// Keys made into OpenSSL's key objects once, for keys that take part in more than one operation: each key
// of a Noise handshake takes part in two, an Endpoint's identity in every handshake. x25519() above makes
// both objects on every call: about 6.5 us of the 70 it takes on a 2-core AMD EPYC, where the derive call
// alone takes 58.5. The objects are immutable once made: copies share them, from any thread. Empty when
// default-made or when OpenSSL could not make the object; an operation with an empty one fails.
class X25519Local;
class X25519Remote;
class X25519Object {  // what the two kinds below share
 public:
  bool empty() const { return !key_; }

 protected:
  X25519Object() = default;
  explicit X25519Object(evp_pkey_st* key);  // takes it; null gives an empty object

 private:
  friend bool x25519(const X25519Local&, const X25519Remote&, Key32&);
  std::shared_ptr<evp_pkey_st> key_;
};

class X25519Local : public X25519Object {  // a private key
 public:
  X25519Local() = default;
  explicit X25519Local(const Key32& private_key);
};

class X25519Remote : public X25519Object {  // a peer's public key
 public:
  X25519Remote() = default;
  explicit X25519Remote(const Key32& public_key);
};

// As x25519() above.
bool x25519(const X25519Local& local, const X25519Remote& peer, Key32& shared_out);
// As x25519_generate(), and gives the new private key's object too, for the DH operations that follow.
X25519KeyPair x25519_generate(RandomSource& rng, X25519Local& local_out);

// Overwrites secret key material (OPENSSL_cleanse: not optimised away) before its memory is let go.
void wipe(Key32& secret);
void wipe(X25519KeyPair& key_pair);  // the private key; the public one is not secret

}  // namespace peerlink::crypto
