#include <gtest/gtest.h>

#include "peerlink/signaling.hpp"
#include "transport/rendezvous/blob.hpp"

namespace peerlink::rendezvous {
namespace {

Blob sample() {
  Blob b;
  b.type = BlobType::kOffer;
  b.session = 0x1122334455667788ull;
  b.sender_key.fill(7);
  b.seq = 3;
  b.ack = 2;
  b.generation = 1;
  b.end_of_candidates = true;
  b.symmetric = true;
  b.tie_breaker = 0xDEADBEEFCAFEull;
  b.ufrag = "uf+1";
  b.pwd = "abcdefghijklmnopqrstuv/+";
  Candidate host;
  host.foundation = "1";
  host.priority = 2130706431;
  host.address = *Address::parse("192.0.2.7:5000");
  Candidate relay;
  relay.type = CandidateType::kRelayed;
  relay.transport = CandidateTransport::kTcpPassive;
  relay.foundation = "r2";
  relay.priority = 16777215;
  relay.address = *Address::parse("[2001:db8::5]:49152");
  b.candidates = {host, relay};
  return b;
}

TEST(RendezvousBlob, RoundTrip) {
  Blob b = sample();
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(encode(b, bytes));
  std::string error;
  auto d = decode(bytes.data(), bytes.size(), &error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->type, b.type);
  EXPECT_EQ(d->session, b.session);
  EXPECT_EQ(d->sender_key, b.sender_key);
  EXPECT_EQ(d->seq, 3);
  EXPECT_EQ(d->ack, 2);
  EXPECT_EQ(d->generation, 1);
  EXPECT_TRUE(d->end_of_candidates);
  EXPECT_TRUE(d->symmetric);
  EXPECT_EQ(d->tie_breaker, b.tie_breaker);
  EXPECT_EQ(d->ufrag, b.ufrag);
  EXPECT_EQ(d->pwd, b.pwd);
  EXPECT_EQ(d->candidates, b.candidates);
}

TEST(RendezvousBlob, RejectRoundTrip) {
  Blob b;
  b.type = BlobType::kReject;
  b.session = 9;
  b.reason = 1234;
  b.text = "busy";
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(encode(b, bytes));
  auto d = decode(bytes.data(), bytes.size());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, 1234u);
  EXPECT_EQ(d->text, "busy");
}

TEST(RendezvousBlob, EveryTruncationAndTrailingByteRefused) {
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(encode(sample(), bytes));
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(decode(bytes.data(), n)) << n;
  bytes.push_back(0);
  EXPECT_FALSE(decode(bytes.data(), bytes.size()));
}

TEST(RendezvousBlob, BadFieldsRefusedWithAReason) {
  std::vector<uint8_t> good;
  ASSERT_TRUE(encode(sample(), good));
  struct Case {
    size_t offset;
    uint8_t value;
    const char* why;
  } cases[] = {
      {0, 'X', "not a peerlink blob"},
      {2, 1, "unsupported blob version"},  // version 1 had no virtual port
      {3, 9, "unknown blob type"},
      {44, 0x80, "unknown flags"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> bad = good;
    bad[c.offset] = c.value;
    std::string error;
    EXPECT_FALSE(decode(bad.data(), bad.size(), &error));
    EXPECT_EQ(error, c.why);
  }
  Blob b = sample();
  b.ufrag = "ab";  // too short
  std::vector<uint8_t> out;
  EXPECT_FALSE(encode(b, out));
  b = sample();
  b.candidates[0].foundation = "bad space";
  EXPECT_FALSE(encode(b, out));
  b = sample();
  b.candidates.resize(Blob::kMaxCandidates + 1, b.candidates[0]);
  EXPECT_FALSE(encode(b, out));
  EXPECT_TRUE(out.empty());
}

TEST(RendezvousBlob, FullBlobFitsTheSignalingLimit) {
  Blob b = sample();
  Candidate c = b.candidates[1];
  c.foundation = std::string(32, 'f');
  b.candidates.assign(Blob::kMaxCandidates, c);
  std::vector<uint8_t> out;
  EXPECT_FALSE(encode(b, out));  // 24 IPv6 candidates with the longest foundations do not fit...
  b.candidates.resize(16);
  ASSERT_TRUE(encode(b, out));  // ...16 do
  EXPECT_LE(out.size(), kMaxSignalingBlob);
}

TEST(PeerIdTest, ParseAndRefuse) {
  auto id = PeerId::parse("xmpp:alice@example.org/laptop");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->scheme(), "xmpp");
  EXPECT_EQ(id->name(), "alice@example.org/laptop");
  Result<PeerId> bad = PeerId::parse("noscheme");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("':'"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(PeerId::parse(":name"));
  EXPECT_FALSE(PeerId::parse("Xmpp:a"));
  EXPECT_FALSE(PeerId::parse("1x:a"));
  EXPECT_FALSE(PeerId::parse("lan:"));
  EXPECT_FALSE(PeerId::parse(std::string("lan:a\nb")));
  EXPECT_FALSE(PeerId::parse("lan:" + std::string(1001, 'a')));
  EXPECT_TRUE(PeerId::parse("my-app.v2+x:" + std::string(1000, 'a')));
}

}  // namespace
}  // namespace peerlink::rendezvous
