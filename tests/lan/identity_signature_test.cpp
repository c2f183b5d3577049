// Signatures by a Host's X25519 identity key (the LAN beacon's records): they verify under that key's
// public half alone, and under nothing else.
#include "identity_signature.hpp"

#include <gtest/gtest.h>

#include <string>

#include "peerlink/identity.hpp"

namespace peerlink::lan {
namespace {

TEST(IdentitySignature, SignsAndVerifiesForManyKeys_AnyChangeFails) {
  const std::string text = "_peerlink._udp.local records";
  const auto* data = reinterpret_cast<const uint8_t*>(text.data());
  const Identity other = Identity::generate();
  for (int i = 0; i < 200; ++i) {
    const Identity id = Identity::generate();
    std::optional<Signature> sig = sign_with_identity(id.private_key(), data, text.size());
    ASSERT_TRUE(sig) << "key " << i;
    ASSERT_TRUE(verify_identity_signature(id.public_key(), data, text.size(), *sig)) << "key " << i;
    EXPECT_FALSE(verify_identity_signature(other.public_key(), data, text.size(), *sig));
    EXPECT_FALSE(verify_identity_signature(id.public_key(), data, text.size() - 1, *sig));
    Signature bad = *sig;
    bad[static_cast<size_t>(i) % bad.size()] ^= 0x01;
    EXPECT_FALSE(verify_identity_signature(id.public_key(), data, text.size(), bad));
  }
}

TEST(IdentitySignature, EachSignatureIsFreshAndEmptyDataWorks) {
  const Identity id = Identity::generate();
  std::optional<Signature> a = sign_with_identity(id.private_key(), nullptr, 0);
  std::optional<Signature> b = sign_with_identity(id.private_key(), nullptr, 0);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);  // random nonces
  EXPECT_TRUE(verify_identity_signature(id.public_key(), nullptr, 0, *a));
  EXPECT_TRUE(verify_identity_signature(id.public_key(), nullptr, 0, *b));
}

TEST(IdentitySignature, TheEdwardsKeyOfAKnownPoint) {
  // u = 9, the X25519 base point, is the Ed25519 base point: y = 4/5, encoded 0x5866...66.
  std::array<uint8_t, 32> nine{};
  nine[0] = 9;
  std::optional<std::array<uint8_t, 32>> b = edwards_key_of(nine);
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)[0], 0x58);
  for (size_t i = 1; i < 32; ++i)
    EXPECT_EQ((*b)[i], 0x66) << i;
  // u = p - 1 has no Edwards point (u + 1 = 0).
  std::array<uint8_t, 32> minus_one{};
  minus_one.fill(0xff);
  minus_one[0] = 0xec;
  minus_one[31] = 0x7f;
  EXPECT_FALSE(edwards_key_of(minus_one));
}

}  // namespace
}  // namespace peerlink::lan
