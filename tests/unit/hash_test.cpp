#include "transport/crypto/hash.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "transport/crypto/random.hpp"

namespace peerlink::crypto {
namespace {

std::string to_hex(const Digest& d) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

const uint8_t* bytes(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

TEST(Hash, Sha256_KnownAnswers) {
  EXPECT_EQ(to_hex(hash(HashAlgorithm::kSha256, nullptr, 0)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(hash(HashAlgorithm::kSha256, bytes("abc"), 3)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// RFC 7693 Appendix B ("abc") and the empty message.
TEST(Hash, Blake2s_KnownAnswers) {
  EXPECT_EQ(to_hex(hash(HashAlgorithm::kBlake2s, bytes("abc"), 3)),
            "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  EXPECT_EQ(to_hex(hash(HashAlgorithm::kBlake2s, nullptr, 0)),
            "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9");
}

TEST(Hash, Hash2_EqualsHashOfConcatenation) {
  for (HashAlgorithm alg : {HashAlgorithm::kSha256, HashAlgorithm::kBlake2s}) {
    const std::string a = "hello, ", b = "world";
    EXPECT_EQ(hash2(alg, bytes(a), a.size(), bytes(b), b.size()),
              hash(alg, bytes(a + b), a.size() + b.size()));
  }
}

TEST(HashHmac, Sha256_Rfc4231Case1) {
  const std::vector<uint8_t> key(20, 0x0b);
  const std::string data = "Hi There";
  EXPECT_EQ(to_hex(hmac(HashAlgorithm::kSha256, key.data(), key.size(), bytes(data), data.size())),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HashHmac, Sha256_Rfc4231Case2) {
  const std::string key = "Jefe", data = "what do ya want for nothing?";
  EXPECT_EQ(to_hex(hmac(HashAlgorithm::kSha256, bytes(key), key.size(), bytes(data), data.size())),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HashHmac, Sha256_Rfc4231Case6_KeyLongerThanBlock) {
  const std::vector<uint8_t> key(131, 0xaa);
  const std::string data = "Test Using Larger Than Block-Size Key - Hash Key First";
  EXPECT_EQ(to_hex(hmac(HashAlgorithm::kSha256, key.data(), key.size(), bytes(data), data.size())),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HashHmac, Sha256_MatchesOpenSslHmacForManyLengths) {
  SeededRandom rng(1);
  for (size_t key_len : {0, 1, 32, 63, 64, 65, 200}) {
    for (size_t data_len : {0, 1, 55, 64, 1000}) {
      std::vector<uint8_t> key(key_len), data(data_len);
      rng.fill(key.data(), key.size());
      rng.fill(data.data(), data.size());
      Digest expected{};
      unsigned int len = 0;
      // OpenSSL reads a null key as "reuse the previous key": give it a real pointer for the empty key.
      const uint8_t no_key = 0;
      ASSERT_NE(HMAC(EVP_sha256(), key.empty() ? &no_key : key.data(), static_cast<int>(key.size()),
                     data.data(), data.size(), expected.data(), &len),
                nullptr);
      EXPECT_EQ(hmac(HashAlgorithm::kSha256, key.data(), key.size(), data.data(), data.size()), expected)
          << "key_len=" << key_len << " data_len=" << data_len;
    }
  }
}

// Noise §4.3 spelled out with hmac(): temp = HMAC(ck, ikm); o1 = HMAC(temp, 1); o2 = HMAC(temp, o1 || 2)...
TEST(NoiseHkdf, MatchesDefinitionAndLeavesUnrequestedOutputAlone) {
  for (HashAlgorithm alg : {HashAlgorithm::kSha256, HashAlgorithm::kBlake2s}) {
    Digest ck{};
    ck.fill(0x11);
    const std::string ikm = "input key material";
    const Digest temp = hmac(alg, ck.data(), ck.size(), bytes(ikm), ikm.size());
    const uint8_t one = 1;
    const Digest o1 = hmac(alg, temp.data(), temp.size(), &one, 1);
    std::vector<uint8_t> in2(o1.begin(), o1.end());
    in2.push_back(2);
    const Digest o2 = hmac(alg, temp.data(), temp.size(), in2.data(), in2.size());
    std::vector<uint8_t> in3(o2.begin(), o2.end());
    in3.push_back(3);
    const Digest o3 = hmac(alg, temp.data(), temp.size(), in3.data(), in3.size());

    Digest a{}, b{}, c{};
    c.fill(0xee);
    noise_hkdf(alg, ck, bytes(ikm), ikm.size(), 2, &a, &b, &c);
    EXPECT_EQ(a, o1);
    EXPECT_EQ(b, o2);
    EXPECT_EQ(c[0], 0xee);
    EXPECT_EQ(c[31], 0xee);
    noise_hkdf(alg, ck, bytes(ikm), ikm.size(), 3, &a, &b, &c);
    EXPECT_EQ(c, o3);
    // The chaining key may be an output too (MixKey writes ck in place).
    noise_hkdf(alg, ck, bytes(ikm), ikm.size(), 2, &ck, &b, nullptr);
    EXPECT_EQ(ck, o1);
  }
}

TEST(HashEqualCt, ComparesContents) {
  const uint8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4}, c[4] = {1, 2, 3, 5};
  EXPECT_TRUE(equal_ct(a, b, 4));
  EXPECT_FALSE(equal_ct(a, c, 4));
  EXPECT_TRUE(equal_ct(a, c, 3));
  EXPECT_TRUE(equal_ct(a, c, 0));
}

}  // namespace
}  // namespace peerlink::crypto
