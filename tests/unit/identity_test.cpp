#include "peerlink/identity.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace peerlink {
namespace {

// The result, with its error message ("" on success) in error, for the assertions' output.
template <typename T>
Result<T> capture(Result<T> r, std::string& error) {
  error = r ? std::string() : r.error().message;
  return r;
}

// A private directory under /tmp, removed with its files at the end of each test.
class IdentityFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/peerlink-identity-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  // Writes a file with the given contents and mode, bypassing Identity.
  void write_file(const std::string& p, const std::string& contents, mode_t mode = 0600) {
    std::ofstream(p) << contents;
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
  }
  std::string dir_;
};

const char* const kPrivateHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

std::array<uint8_t, 32> sample_private_key() {
  std::array<uint8_t, 32> k{};
  for (size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<uint8_t>(i);
  return k;
}

TEST_F(IdentityFiles, SaveThenLoad_SameKeys) {
  const Identity id = Identity::generate();
  std::string error;
  ASSERT_TRUE(capture(id.save(path("id.key")), error)) << error;
  const auto loaded = capture(Identity::load(path("id.key")), error);
  ASSERT_TRUE(loaded) << error;
  EXPECT_EQ(loaded->private_key(), id.private_key());
  EXPECT_EQ(loaded->public_key(), id.public_key());
  EXPECT_EQ(loaded->fingerprint(), id.fingerprint());
}

TEST_F(IdentityFiles, Save_CreatesMode0600AndNoTemporaryLeftBehind) {
  ASSERT_TRUE(Identity::generate().save(path("id.key")));
  struct stat st {};
  ASSERT_EQ(::stat(path("id.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_nlink, 1u);  // the temporary link is gone
}

TEST_F(IdentityFiles, Save_RefusesToOverwrite) {
  const Identity first = Identity::generate();
  ASSERT_TRUE(first.save(path("id.key")));
  std::string error;
  EXPECT_FALSE(capture(Identity::generate().save(path("id.key")), error));
  EXPECT_NE(error.find(path("id.key")), std::string::npos) << error;
  EXPECT_EQ(Identity::load(path("id.key"))->public_key(), first.public_key());
}

TEST_F(IdentityFiles, Save_MissingDirectory_FailsWithPath) {
  std::string error;
  EXPECT_FALSE(capture(Identity::generate().save(path("no/such/dir/id.key")), error));
  EXPECT_NE(error.find("no/such/dir/id.key"), std::string::npos) << error;
}

TEST_F(IdentityFiles, LoadOrCreate_CreatesThenReloadsSameKey) {
  std::string error;
  const auto created = capture(Identity::load_or_create(path("id.key")), error);
  ASSERT_TRUE(created) << error;
  struct stat st {};
  ASSERT_EQ(::stat(path("id.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const auto again = capture(Identity::load_or_create(path("id.key")), error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->private_key(), created->private_key());
}

TEST_F(IdentityFiles, LoadOrCreate_InsecureExistingFile_FailsInsteadOfReplacing) {
  write_file(path("id.key"), std::string("peerlink-identity-v1\n") + kPrivateHex + "\n", 0644);
  std::string error;
  EXPECT_FALSE(capture(Identity::load_or_create(path("id.key")), error));
  EXPECT_NE(error.find("permissions"), std::string::npos) << error;
}

TEST_F(IdentityFiles, Load_AcceptsFileWithoutPublicLine) {
  write_file(path("id.key"), std::string("peerlink-identity-v1\n") + kPrivateHex + "\n");
  std::string error;
  const auto id = capture(Identity::load(path("id.key")), error);
  ASSERT_TRUE(id) << error;
  EXPECT_EQ(id->private_key(), sample_private_key());
}

void expect_load_fails(const std::string& p, const std::string& expected_words) {
  std::string error;
  Result<Identity> loaded = capture(Identity::load(p), error);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kFile);
  EXPECT_NE(error.find(p), std::string::npos) << "error should name the path: " << error;
  EXPECT_NE(error.find(expected_words), std::string::npos) << error;
}

TEST_F(IdentityFiles, Load_MissingFile_Fails) {
  expect_load_fails(path("absent.key"), "No such file");
}

TEST_F(IdentityFiles, Load_TruncatedHex_Fails) {
  write_file(path("id.key"),
             std::string("peerlink-identity-v1\n") + std::string(kPrivateHex).substr(0, 40) + "\n");
  expect_load_fails(path("id.key"), "64 hex");
}

TEST_F(IdentityFiles, Load_BadHeader_Fails) {
  write_file(path("id.key"), std::string("peerlink-identity-v2\n") + kPrivateHex + "\n");
  expect_load_fails(path("id.key"), "first line");
}

TEST_F(IdentityFiles, Load_NonHex_Fails) {
  std::string bad = kPrivateHex;
  bad[10] = 'g';
  write_file(path("id.key"), "peerlink-identity-v1\n" + bad + "\n");
  expect_load_fails(path("id.key"), "64 hex");
}

TEST_F(IdentityFiles, Load_EmptyFile_Fails) {
  write_file(path("id.key"), "");
  expect_load_fails(path("id.key"), "first line");
}

TEST_F(IdentityFiles, Load_WorldReadable_Fails) {
  ASSERT_TRUE(Identity::generate().save(path("id.key")));
  ASSERT_EQ(::chmod(path("id.key").c_str(), 0644), 0);
  expect_load_fails(path("id.key"), "permissions 0644 are too open");
}

TEST_F(IdentityFiles, Load_GroupReadable_Fails) {
  ASSERT_TRUE(Identity::generate().save(path("id.key")));
  ASSERT_EQ(::chmod(path("id.key").c_str(), 0640), 0);
  expect_load_fails(path("id.key"), "too open");
}

TEST_F(IdentityFiles, Load_MismatchedPublicLine_Fails) {
  write_file(path("id.key"),
             std::string("peerlink-identity-v1\n") + kPrivateHex + "\npublic " + std::string(64, 'a') + "\n");
  expect_load_fails(path("id.key"), "does not match");
}

TEST_F(IdentityFiles, Load_TrailingGarbage_Fails) {
  Identity id = Identity::from_private_key(sample_private_key());
  ASSERT_TRUE(id.save(path("id.key")));
  std::ofstream(path("id.key"), std::ios::app) << "surprise\n";
  expect_load_fails(path("id.key"), "malformed");
}

TEST_F(IdentityFiles, Load_Directory_Fails) {
  ASSERT_EQ(::mkdir(path("d").c_str(), 0700), 0);
  expect_load_fails(path("d"), "regular file");
}

TEST(Identity, FromPrivateKey_DerivesX25519PublicKey) {
  // RFC 7748 §6.1 Alice.
  std::array<uint8_t, 32> priv{};
  const std::string hex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
  for (size_t i = 0; i < 32; ++i)
    priv[i] = static_cast<uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  const Identity id = Identity::from_private_key(priv);
  EXPECT_EQ(id.public_key()[0], 0x85);
  EXPECT_EQ(id.public_key()[31], 0x6a);
}

TEST(Identity, Fingerprint_FormatIsPl1AndEightGroupsOfFourBase32) {
  const std::string fp = Identity::generate().fingerprint();
  ASSERT_EQ(fp.size(), 4u + 8 * 5 - 1);
  EXPECT_EQ(fp.substr(0, 4), "pl1-");
  for (size_t i = 4; i < fp.size(); ++i) {
    if ((i - 3) % 5 == 0) {
      EXPECT_EQ(fp[i], '-') << fp;
    } else {
      EXPECT_TRUE((fp[i] >= 'a' && fp[i] <= 'z') || (fp[i] >= '2' && fp[i] <= '7')) << fp;
    }
  }
}

// Computed once, independently of this code, with Python (base64.b32encode of the first 20 bytes
// of SHA-256 of the public key); it must never change, people compare these across versions.
TEST(Identity, Fingerprint_StableForKnownKey) {
  const Identity id = Identity::from_private_key(sample_private_key());
  EXPECT_EQ(id.fingerprint(), "pl1-53oy-qpna-vfcr-le64-bi4o-la73-o4h2-e7n3");
  EXPECT_EQ(Identity::fingerprint_of(id.public_key()), id.fingerprint());
}

TEST(Identity, Generate_GivesDistinctKeys) {
  EXPECT_NE(Identity::generate().private_key(), Identity::generate().private_key());
}

}  // namespace
}  // namespace peerlink
