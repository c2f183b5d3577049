#include "transport/crypto/x25519.hpp"

#include <gtest/gtest.h>

#include <string>

namespace peerlink::crypto {
namespace {

Key32 key(const std::string& hex) {
  Key32 k{};
  for (size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  return k;
}

// RFC 7748 §6.1.
const Key32 kAlicePrivate = key("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
const Key32 kAlicePublic = key("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
const Key32 kBobPrivate = key("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
const Key32 kBobPublic = key("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
const Key32 kShared = key("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

TEST(X25519, Rfc7748Section61_PublicKeysDerive) {
  EXPECT_EQ(x25519_from_private(kAlicePrivate).public_key, kAlicePublic);
  EXPECT_EQ(x25519_from_private(kBobPrivate).public_key, kBobPublic);
  EXPECT_EQ(x25519_from_private(kAlicePrivate).private_key, kAlicePrivate);
}

TEST(X25519, Rfc7748Section61_BothSidesAgree) {
  Key32 a{}, b{};
  ASSERT_TRUE(x25519(kAlicePrivate, kBobPublic, a));
  ASSERT_TRUE(x25519(kBobPrivate, kAlicePublic, b));
  EXPECT_EQ(a, kShared);
  EXPECT_EQ(b, kShared);
}

// RFC 7748 §5.2, first vector: an unclamped scalar, so clamping must happen inside.
TEST(X25519, Rfc7748Section52_UnclampedScalar) {
  Key32 out{};
  ASSERT_TRUE(x25519(key("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                     key("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"), out));
  EXPECT_EQ(out, key("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"));
}

TEST(X25519, AllZeroPublicKey_Rejected) {
  Key32 out{};
  EXPECT_FALSE(x25519(kAlicePrivate, Key32{}, out));
}

TEST(X25519, LowOrderPointOne_Rejected) {
  Key32 one{};
  one[0] = 1;
  Key32 out{};
  EXPECT_FALSE(x25519(kAlicePrivate, one, out));
}

TEST(X25519, Generate_SeededIsDeterministicAndValid) {
  SeededRandom r1(42), r2(42), r3(43);
  const X25519KeyPair a = x25519_generate(r1);
  const X25519KeyPair b = x25519_generate(r2);
  const X25519KeyPair c = x25519_generate(r3);
  EXPECT_EQ(a.private_key, b.private_key);
  EXPECT_NE(a.private_key, c.private_key);
  EXPECT_EQ(a.public_key, x25519_from_private(a.private_key).public_key);
  Key32 s1{}, s2{};
  ASSERT_TRUE(x25519(a.private_key, c.public_key, s1));
  ASSERT_TRUE(x25519(c.private_key, a.public_key, s2));
  EXPECT_EQ(s1, s2);
}

TEST(X25519, Generate_SystemRandomGivesDistinctKeys) {
  SystemRandom rng;
  EXPECT_NE(x25519_generate(rng).private_key, x25519_generate(rng).private_key);
}

TEST(X25519, KeyObjects_SameResultsAsTheKeyBytes_UsedOverAndOver) {
  const X25519Local alice(kAlicePrivate), bob(kBobPrivate);
  const X25519Remote alice_pub(kAlicePublic), bob_pub(kBobPublic);
  ASSERT_FALSE(alice.empty() || bob.empty() || alice_pub.empty() || bob_pub.empty());
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    Key32 a{}, b{};
    ASSERT_TRUE(x25519(alice, bob_pub, a));
    ASSERT_TRUE(x25519(bob, alice_pub, b));
    EXPECT_EQ(a, kShared);
    EXPECT_EQ(b, kShared);
  }
  // Copies share the objects and give the same result.
  const X25519Local alice_copy = alice;
  Key32 c{};
  ASSERT_TRUE(x25519(alice_copy, bob_pub, c));
  EXPECT_EQ(c, kShared);
}

TEST(X25519, KeyObjects_EmptyOrLowOrder_Fail) {
  Key32 out{};
  EXPECT_FALSE(x25519(X25519Local(), X25519Remote(kBobPublic), out));
  EXPECT_FALSE(x25519(X25519Local(kAlicePrivate), X25519Remote(), out));
  Key32 one{};
  one[0] = 1;
  EXPECT_FALSE(x25519(X25519Local(kAlicePrivate), X25519Remote(one), out));
  EXPECT_FALSE(x25519(X25519Local(kAlicePrivate), X25519Remote(Key32{}), out));
}

TEST(X25519, Generate_GivesTheObjectOfItsPrivateKey) {
  SeededRandom r1(7), r2(7);
  X25519Local local;
  const X25519KeyPair a = x25519_generate(r1, local);
  EXPECT_EQ(a.private_key, x25519_generate(r2).private_key);  // the same draw as without the object
  EXPECT_EQ(a.public_key, x25519_from_private(a.private_key).public_key);
  ASSERT_FALSE(local.empty());
  Key32 with_object{}, with_bytes{};
  ASSERT_TRUE(x25519(local, X25519Remote(kBobPublic), with_object));
  ASSERT_TRUE(x25519(a.private_key, kBobPublic, with_bytes));
  EXPECT_EQ(with_object, with_bytes);
}

}  // namespace
}  // namespace peerlink::crypto
