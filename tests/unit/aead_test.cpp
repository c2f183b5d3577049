#include "transport/crypto/aead.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>
#include <vector>

namespace peerlink::crypto {
namespace {

std::vector<uint8_t> hex(const std::string& s) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < s.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
  return out;
}

Key32 key_from(const std::vector<uint8_t>& v) {
  Key32 k{};
  std::copy(v.begin(), v.end(), k.begin());
  return k;
}

// RFC 8439 Appendix A.5: its nonce 00000000 0102030405060708 is the Noise ChaChaPoly layout of this counter.
constexpr uint64_t kRfc8439Counter = 0x0807060504030201ULL;
const char* const kRfc8439Key = "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0";
const char* const kRfc8439Aad = "f33388860000000000004e91";
const char* const kRfc8439Plaintext =
    "496e7465726e65742d4472616674732061726520647261667420646f63756d65"
    "6e74732076616c696420666f722061206d6178696d756d206f6620736978206d"
    "6f6e74687320616e64206d617920626520757064617465642c207265706c6163"
    "65642c206f72206f62736f6c65746564206279206f7468657220646f63756d65"
    "6e747320617420616e792074696d652e20497420697320696e617070726f7072"
    "6961746520746f2075736520496e7465726e65742d4472616674732061732072"
    "65666572656e6365206d6174657269616c206f7220746f206369746520746865"
    "6d206f74686572207468616e206173202fe2809c776f726b20696e2070726f67"
    "726573732e2fe2809d";
const char* const kRfc8439CiphertextAndTag =
    "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2"
    "4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf"
    "332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
    "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4"
    "b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e"
    "af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
    "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10"
    "49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29"
    "a6ad5cb4022b02709b"
    "eead9d67890cbb22392336fea1851f38";

TEST(Aead, ChaChaPoly_Rfc8439AppendixA5_Seals) {
  Aead aead(AeadAlgorithm::kChaChaPoly, key_from(hex(kRfc8439Key)));
  const auto aad = hex(kRfc8439Aad);
  const auto pt = hex(kRfc8439Plaintext);
  std::vector<uint8_t> out(pt.size() + kAeadTagLength);
  EXPECT_EQ(aead.seal(kRfc8439Counter, aad.data(), aad.size(), pt.data(), pt.size(), out.data()), out.size());
  EXPECT_EQ(out, hex(kRfc8439CiphertextAndTag));
}

TEST(Aead, ChaChaPoly_Rfc8439AppendixA5_Opens) {
  Aead aead(AeadAlgorithm::kChaChaPoly, key_from(hex(kRfc8439Key)));
  const auto aad = hex(kRfc8439Aad);
  const auto ct = hex(kRfc8439CiphertextAndTag);
  std::vector<uint8_t> out(ct.size() - kAeadTagLength);
  ASSERT_TRUE(aead.open(kRfc8439Counter, aad.data(), aad.size(), ct.data(), ct.size(), out.data()));
  EXPECT_EQ(out, hex(kRfc8439Plaintext));
}

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14 (AES-256, zero key, zero IV):
// the all-zero IV is the Noise AESGCM layout of counter 0.
TEST(Aead, AesGcm_GcmSpecTestCase13_EmptyPlaintext) {
  Aead aead(AeadAlgorithm::kAesGcm, Key32{});
  uint8_t tag[kAeadTagLength];
  EXPECT_EQ(aead.seal(0, nullptr, 0, nullptr, 0, tag), kAeadTagLength);
  EXPECT_EQ(std::vector<uint8_t>(tag, tag + sizeof(tag)), hex("530f8afbc74536b9a963b4f1c4cb738b"));
  uint8_t unused = 0;
  EXPECT_TRUE(aead.open(0, nullptr, 0, tag, sizeof(tag), &unused));
}

TEST(Aead, AesGcm_GcmSpecTestCase14_OneZeroBlock) {
  Aead aead(AeadAlgorithm::kAesGcm, Key32{});
  const std::vector<uint8_t> pt(16, 0);
  std::vector<uint8_t> out(32);
  aead.seal(0, nullptr, 0, pt.data(), pt.size(), out.data());
  EXPECT_EQ(out, hex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"));
  std::vector<uint8_t> back(16);
  ASSERT_TRUE(aead.open(0, nullptr, 0, out.data(), out.size(), back.data()));
  EXPECT_EQ(back, pt);
}

// Seals with a raw 12-byte IV through OpenSSL's one-shot path, independent of the Aead class.
std::vector<uint8_t> reference_seal(AeadAlgorithm alg, const Key32& key, const uint8_t iv[12],
                                    const std::vector<uint8_t>& pt) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const EVP_CIPHER* cipher = alg == AeadAlgorithm::kChaChaPoly ? EVP_chacha20_poly1305() : EVP_aes_256_gcm();
  std::vector<uint8_t> out(pt.size() + kAeadTagLength);
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, cipher, nullptr, key.data(), iv), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &len, pt.data(), static_cast<int>(pt.size())), 1);
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx, out.data() + len, &len), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out.data() + pt.size()), 1);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

TEST(Aead, NonceLayout_ChaChaPolyIsLittleEndianAfterFourZeroBytes) {
  Key32 key{};
  key[0] = 7;
  const std::vector<uint8_t> pt = {1, 2, 3, 4, 5};
  Aead aead(AeadAlgorithm::kChaChaPoly, key);
  std::vector<uint8_t> out(pt.size() + kAeadTagLength);
  aead.seal(0x1122334455667788ULL, nullptr, 0, pt.data(), pt.size(), out.data());
  const uint8_t iv[12] = {0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
  EXPECT_EQ(out, reference_seal(AeadAlgorithm::kChaChaPoly, key, iv, pt));
}

TEST(Aead, NonceLayout_AesGcmIsBigEndianAfterFourZeroBytes) {
  Key32 key{};
  key[0] = 7;
  const std::vector<uint8_t> pt = {1, 2, 3, 4, 5};
  Aead aead(AeadAlgorithm::kAesGcm, key);
  std::vector<uint8_t> out(pt.size() + kAeadTagLength);
  aead.seal(0x1122334455667788ULL, nullptr, 0, pt.data(), pt.size(), out.data());
  const uint8_t iv[12] = {0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
  EXPECT_EQ(out, reference_seal(AeadAlgorithm::kAesGcm, key, iv, pt));
}

using Bytes = std::vector<uint8_t>;

class AeadBothCiphers : public ::testing::TestWithParam<AeadAlgorithm> {
 protected:
  Key32 key() const {
    Key32 k{};
    for (size_t i = 0; i < k.size(); ++i)
      k[i] = static_cast<uint8_t>(i * 3 + 1);
    return k;
  }
  std::vector<uint8_t> sealed(uint64_t nonce) {
    Aead aead(GetParam(), key());
    std::vector<uint8_t> out(plaintext_.size() + kAeadTagLength);
    aead.seal(nonce, ad_.data(), ad_.size(), plaintext_.data(), plaintext_.size(), out.data());
    return out;
  }
  bool opens(uint64_t nonce, const std::vector<uint8_t>& ad, const std::vector<uint8_t>& ct) {
    Aead aead(GetParam(), key());
    std::vector<uint8_t> out(ct.size());
    return aead.open(nonce, ad.data(), ad.size(), ct.data(), ct.size(), out.data());
  }
  const std::vector<uint8_t> plaintext_ = std::vector<uint8_t>(100, 0x42);
  const std::vector<uint8_t> ad_ = {9, 8, 7};
};

TEST_P(AeadBothCiphers, RoundTrip_RecoversPlaintext) {
  const auto ct = sealed(5);
  Aead aead(GetParam(), key());
  std::vector<uint8_t> out(plaintext_.size());
  ASSERT_TRUE(aead.open(5, ad_.data(), ad_.size(), ct.data(), ct.size(), out.data()));
  EXPECT_EQ(out, plaintext_);
}

TEST_P(AeadBothCiphers, TamperedCiphertext_Rejected) {
  auto ct = sealed(5);
  ct[10] ^= 1;
  EXPECT_FALSE(opens(5, ad_, ct));
}

TEST_P(AeadBothCiphers, TamperedTag_Rejected) {
  auto ct = sealed(5);
  ct.back() ^= 0x80;
  EXPECT_FALSE(opens(5, ad_, ct));
}

TEST_P(AeadBothCiphers, TamperedAssociatedData_Rejected) {
  const auto ct = sealed(5);
  EXPECT_FALSE(opens(5, {9, 8, 6}, ct));
  EXPECT_FALSE(opens(5, {}, ct));
}

TEST_P(AeadBothCiphers, WrongNonce_Rejected) {
  const auto ct = sealed(5);
  EXPECT_FALSE(opens(4, ad_, ct));
  EXPECT_FALSE(opens(5ULL << 32, ad_, ct));
  EXPECT_TRUE(opens(5, ad_, ct));
}

TEST_P(AeadBothCiphers, ShorterThanTag_Rejected) {
  Aead aead(GetParam(), key());
  const uint8_t ct[kAeadTagLength - 1] = {};
  uint8_t out[kAeadTagLength] = {};
  EXPECT_FALSE(aead.open(0, nullptr, 0, ct, sizeof(ct), out));
}

TEST_P(AeadBothCiphers, InPlace_SealThenOpenInSameBuffer) {
  std::vector<uint8_t> buf = plaintext_;
  buf.resize(plaintext_.size() + kAeadTagLength);
  Aead aead(GetParam(), key());
  aead.seal(77, ad_.data(), ad_.size(), buf.data(), plaintext_.size(), buf.data());
  EXPECT_EQ(buf, sealed(77));
  ASSERT_TRUE(aead.open(77, ad_.data(), ad_.size(), buf.data(), buf.size(), buf.data()));
  EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + plaintext_.size()), plaintext_);
}

// The contexts are keyed once and re-nonced per call: many calls on one object, with failures in between,
// must behave like fresh objects.
TEST_P(AeadBothCiphers, ReusedObject_ManyPacketsAndFailuresInterleaved) {
  Aead sender(GetParam(), key());
  Aead receiver(GetParam(), key());
  for (uint64_t n = 0; n < 200; ++n) {
    std::vector<uint8_t> pt(n % 37, static_cast<uint8_t>(n));
    std::vector<uint8_t> ct(pt.size() + kAeadTagLength);
    sender.seal(n, ad_.data(), ad_.size(), pt.data(), pt.size(), ct.data());
    std::vector<uint8_t> out(pt.size() + 1);
    if (n % 5 == 0) {
      EXPECT_FALSE(receiver.open(n + 1, ad_.data(), ad_.size(), ct.data(), ct.size(), out.data()));
    }
    ASSERT_TRUE(receiver.open(n, ad_.data(), ad_.size(), ct.data(), ct.size(), out.data())) << "packet " << n;
    EXPECT_TRUE(std::equal(pt.begin(), pt.end(), out.begin()));
  }
}

TEST_P(AeadBothCiphers, MovedObject_StillWorks) {
  Aead a(GetParam(), key());
  Aead b = std::move(a);
  std::vector<uint8_t> out(plaintext_.size() + kAeadTagLength);
  b.seal(5, ad_.data(), ad_.size(), plaintext_.data(), plaintext_.size(), out.data());
  EXPECT_EQ(out, sealed(5));
  EXPECT_EQ(b.algorithm(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Ciphers, AeadBothCiphers,
                         ::testing::Values(AeadAlgorithm::kChaChaPoly, AeadAlgorithm::kAesGcm),
                         [](const ::testing::TestParamInfo<AeadAlgorithm>& info) {
                           return info.param == AeadAlgorithm::kChaChaPoly ? std::string("ChaChaPoly")
                                                                           : std::string("AesGcm");
                         });

// Sealing with some of the plaintext read from elsewhere gives exactly what sealing it whole gives, for
// pieces at the start, in the middle at odd offsets, next to each other, and at the end.
TEST_P(AeadBothCiphers, SealGathered_SameAsSealingThePlaintextWhole) {
  Bytes plaintext(1200);
  for (size_t i = 0; i < plaintext.size(); ++i)
    plaintext[i] = static_cast<uint8_t>(i * 13 + 5);
  const std::vector<std::vector<std::pair<size_t, size_t>>> layouts = {
      {},           {{0, 1200}}, {{0, 17}}, {{9, 300}, {309, 5}, {700, 500}}, {{1, 1}, {16, 64}, {1199, 1}},
      {{1183, 17}},
  };
  Aead gathered(GetParam(), key()), whole(GetParam(), key());
  uint64_t nonce = 0x0102030405060708ULL;
  for (size_t l = 0; l < layouts.size(); ++l) {
    SCOPED_TRACE("layout " + std::to_string(l));
    const auto& layout = layouts[l];
    Bytes expected(plaintext.size() + kAeadTagLength);
    whole.seal(nonce, ad_.data(), ad_.size(), plaintext.data(), plaintext.size(), expected.data());
    // The buffer holds the plaintext except where a source covers it; the sources hold those bytes.
    Bytes buf(plaintext.size() + kAeadTagLength, 0xcc);
    Bytes elsewhere = plaintext;
    std::vector<Aead::Source> sources;
    size_t done = 0;
    for (const auto& [at, len] : layout) {
      std::copy(plaintext.begin() + long(done), plaintext.begin() + long(at), buf.begin() + long(done));
      sources.push_back({at, elsewhere.data() + at, len});
      done = at + len;
    }
    std::copy(plaintext.begin() + long(done), plaintext.end(), buf.begin() + long(done));
    EXPECT_EQ(gathered.seal_gathered(nonce, ad_.data(), ad_.size(), buf.data(), plaintext.size(),
                                     sources.data(), sources.size()),
              buf.size());
    EXPECT_EQ(buf, expected);
    EXPECT_EQ(elsewhere, plaintext) << "the sources are only read";
    ++nonce;
  }
}

TEST(Aead, CpuHasAes_AnswersConsistently) {
  EXPECT_EQ(cpu_has_aes(), cpu_has_aes());
}

}  // namespace
}  // namespace peerlink::crypto
