#include "lan_rendezvous.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <memory>

namespace peerlink::lan {
namespace {

constexpr uint8_t kMagic[4] = {'P', 'L', 'L', 'R'};
constexpr uint8_t kVersion = 1;
constexpr char kLabel[] = "peerlink lan rendezvous 1";
constexpr size_t kMaxPeerKeys = 1024;  // derived keys kept; beyond, the table starts over

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::optional<std::array<uint8_t, 32>> x25519(const std::array<uint8_t, 32>& priv, const PublicKey& pub) {
  std::unique_ptr<EVP_PKEY, PkeyFree> a(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.data(), priv.size()));
  std::unique_ptr<EVP_PKEY, PkeyFree> b(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, pub.data(), pub.size()));
  if (!a || !b) return std::nullopt;
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new(a.get(), nullptr));
  std::array<uint8_t, 32> out{};
  size_t n = out.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), b.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), out.data(), &n) != 1 || n != out.size())
    return std::nullopt;  // OpenSSL refuses an all-zero result (a low-order point)
  return out;
}

void tag_of(const std::vector<uint8_t>& key, const uint8_t* data, size_t size, uint8_t out[kRendezvousTag]) {
  uint8_t full[32];
  unsigned n = sizeof full;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data, size, full, &n);
  std::memcpy(out, full, kRendezvousTag);
}

}  // namespace

bool looks_like_rendezvous(const uint8_t* data, size_t size) {
  return size >= sizeof kMagic && std::memcmp(data, kMagic, sizeof kMagic) == 0;
}

RendezvousCrypto::RendezvousCrypto(const Identity& self, std::vector<uint8_t> network_key)
    : self_(self), network_key_(std::move(network_key)) {}

std::optional<std::vector<uint8_t>> RendezvousCrypto::key_for(const PublicKey& peer) {
  auto it = keys_.find(peer);
  if (it != keys_.end()) return it->second;
  const std::optional<std::array<uint8_t, 32>> shared = x25519(self_.private_key(), peer);
  if (!shared) return std::nullopt;
  std::vector<uint8_t> input(kLabel, kLabel + sizeof kLabel - 1);
  input.insert(input.end(), shared->begin(), shared->end());
  std::vector<uint8_t> key(32);
  unsigned n = 32;
  static const uint8_t kNoKey = 0;
  HMAC(EVP_sha256(), network_key_.empty() ? &kNoKey : network_key_.data(),
       static_cast<int>(network_key_.size()), input.data(), input.size(), key.data(), &n);
  OPENSSL_cleanse(input.data(), input.size());
  if (keys_.size() >= kMaxPeerKeys) keys_.clear();
  keys_[peer] = key;
  return key;
}

std::optional<std::vector<uint8_t>> RendezvousCrypto::seal(const PublicKey& peer, const uint8_t* blob,
                                                           size_t size, uint64_t counter) {
  if (size > 0xffff) return std::nullopt;
  const std::optional<std::vector<uint8_t>> key = key_for(peer);
  if (!key) return std::nullopt;
  std::vector<uint8_t> out;
  out.reserve(kRendezvousHeader + size + kRendezvousTag);
  out.insert(out.end(), kMagic, kMagic + sizeof kMagic);
  out.push_back(kVersion);
  out.insert(out.end(), self_.public_key().begin(), self_.public_key().end());
  out.insert(out.end(), peer.begin(), peer.end());
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<uint8_t>(counter >> shift));
  out.push_back(static_cast<uint8_t>(size >> 8));
  out.push_back(static_cast<uint8_t>(size));
  out.insert(out.end(), blob, blob + size);
  uint8_t tag[kRendezvousTag];
  tag_of(*key, out.data(), out.size(), tag);
  out.insert(out.end(), tag, tag + sizeof tag);
  return out;
}

std::optional<SealedBlob> RendezvousCrypto::open(const uint8_t* data, size_t size, Refusal* refusal) {
  auto refuse = [&](Refusal why) -> std::optional<SealedBlob> {
    if (refusal) *refusal = why;
    return std::nullopt;
  };
  if (size < kRendezvousHeader + kRendezvousTag || !looks_like_rendezvous(data, size) || data[4] != kVersion)
    return refuse(Refusal::kMalformed);
  const size_t length = size_t{data[kRendezvousHeader - 2]} << 8 | data[kRendezvousHeader - 1];
  if (length == 0 || kRendezvousHeader + length + kRendezvousTag != size) return refuse(Refusal::kMalformed);
  SealedBlob out;
  std::memcpy(out.sender.data(), data + 5, 32);
  if (std::memcmp(data + 37, self_.public_key().data(), 32) != 0 || out.sender == self_.public_key())
    return refuse(Refusal::kNotForUs);
  const std::optional<std::vector<uint8_t>> key = key_for(out.sender);
  if (!key) return refuse(Refusal::kBadTag);
  uint8_t tag[kRendezvousTag];
  tag_of(*key, data, size - kRendezvousTag, tag);
  if (CRYPTO_memcmp(tag, data + size - kRendezvousTag, kRendezvousTag) != 0) return refuse(Refusal::kBadTag);
  for (size_t i = 0; i < 8; ++i)
    out.counter = out.counter << 8 | data[69 + i];
  auto newest = newest_.find(out.sender);
  if (newest != newest_.end() && out.counter <= newest->second) return refuse(Refusal::kReplayed);
  if (newest_.size() >= kMaxPeerKeys && newest == newest_.end()) {
    // A thousand senders: start over. A forgotten sender's old datagram then passes once more, as a
    // duplicate blob, which the Host tolerates (it is authentic: only its age is not checked).
    newest_.clear();
  }
  newest_[out.sender] = out.counter;
  out.blob.assign(data + kRendezvousHeader, data + kRendezvousHeader + length);
  if (refusal) *refusal = Refusal::kNone;
  return out;
}

}  // namespace peerlink::lan
