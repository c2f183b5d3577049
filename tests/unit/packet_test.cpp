// Packet header encoders and decoders (src/transport/protocol/packet.hpp) and packet number reconstruction.
#include "transport/protocol/packet.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace peerlink::protocol {
namespace {

std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = uint8_t(seed + i * 13);
  return v;
}

const std::vector<uint8_t> kCookie = pattern_bytes(kCookieSize, 0xc0);
const std::vector<uint8_t> kNoise = pattern_bytes(96, 0x11);

template <typename Packet>
std::vector<uint8_t> encode_with(size_t (*fn)(const Packet&, uint8_t*, size_t), const Packet& p) {
  std::vector<uint8_t> buf(2048);
  size_t n = fn(p, buf.data(), buf.size());
  EXPECT_NE(n, 0u);
  buf.resize(n);
  return buf;
}

InitiationPacket sample_initiation(bool with_cookie) {
  InitiationPacket p;
  p.suite = CipherSuiteId::kAesGcm;
  p.pattern = HandshakePattern::kXX;
  p.sender_id = 0xdeadbeef;
  p.cookie = with_cookie ? kCookie.data() : nullptr;
  p.noise = kNoise.data();
  p.noise_length = kNoise.size();
  return p;
}

ResponsePacket sample_response() {
  ResponsePacket p;
  p.receiver_id = 0x01020304;
  p.sender_id = 0xa0b0c0d0;
  p.noise = kNoise.data();
  p.noise_length = kNoise.size();
  return p;
}

FinishPacket sample_finish() {
  FinishPacket p;
  p.receiver_id = 0x11223344;
  p.sender_id = 0x55667788;
  p.noise = kNoise.data();
  p.noise_length = 64;
  return p;
}

RetryPacket sample_retry() {
  RetryPacket p;
  p.receiver_id = 0xfeedface;
  p.cookie = kCookie.data();
  return p;
}

RejectPacket sample_reject() {
  RejectPacket p;
  p.receiver_id = 0x0badf00d;
  p.reason = 4005;
  return p;
}

std::vector<uint8_t> sample_data_packet(bool key_phase, size_t size = kDataHeaderSize + kAeadTagSize + 10) {
  std::vector<uint8_t> buf(size, 0x77);
  encode_data_header(DataHeader{key_phase, 0x12345678, 0x9abcdef0}, buf.data());
  return buf;
}

// Runs every decoder; returns a bit per decoder that accepted the input.
unsigned accepted_by(const std::vector<uint8_t>& bytes) {
  InitiationPacket i;
  ResponsePacket r;
  FinishPacket f;
  RetryPacket t;
  RejectPacket j;
  DataHeader d;
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  return unsigned(decode_initiation(p, n, i)) << 0 | unsigned(decode_response(p, n, r)) << 1 |
         unsigned(decode_finish(p, n, f)) << 2 | unsigned(decode_retry(p, n, t)) << 3 |
         unsigned(decode_reject(p, n, j)) << 4 | unsigned(decode_data_header(p, n, d)) << 5;
}

// A hand-built Initiation, so fields can hold values the encoder refuses to write.
std::vector<uint8_t> raw_initiation(uint8_t version, uint8_t suite, uint8_t pattern, uint8_t cookie_len,
                                    size_t cookie_bytes, uint16_t noise_len, size_t noise_bytes,
                                    size_t total) {
  std::vector<uint8_t> v = {0x80, version, suite, pattern, 0, 0, 0, 42, cookie_len};
  v.insert(v.end(), cookie_bytes, 0xcc);
  v.push_back(uint8_t(noise_len >> 8));
  v.push_back(uint8_t(noise_len));
  v.insert(v.end(), noise_bytes, 0xee);
  if (v.size() < total) v.resize(total, 0);
  return v;
}

TEST(PacketRoundTrip, InitiationWithAndWithoutCookie_SameFieldsPaddedTo1200) {
  for (bool with_cookie : {false, true}) {
    SCOPED_TRACE(with_cookie);
    InitiationPacket want = sample_initiation(with_cookie);
    auto bytes = encode_with(encode_initiation, want);
    ASSERT_EQ(bytes.size(), kMinInitiationSize);
    size_t content = 11 + (with_cookie ? kCookieSize : 0) + kNoise.size();
    for (size_t i = content; i < bytes.size(); ++i)
      ASSERT_EQ(bytes[i], 0) << "padding byte " << i;
    EXPECT_EQ(peek_packet_kind(bytes.data(), bytes.size()), PacketKind::kInitiation);

    InitiationPacket got;
    ASSERT_TRUE(decode_initiation(bytes.data(), bytes.size(), got));
    EXPECT_EQ(got.version, kProtocolVersion);
    EXPECT_EQ(got.suite, want.suite);
    EXPECT_EQ(got.pattern, want.pattern);
    EXPECT_EQ(got.sender_id, want.sender_id);
    if (with_cookie) {
      ASSERT_NE(got.cookie, nullptr);
      EXPECT_EQ(std::vector<uint8_t>(got.cookie, got.cookie + kCookieSize), kCookie);
    } else {
      EXPECT_EQ(got.cookie, nullptr);
    }
    ASSERT_EQ(got.noise_length, kNoise.size());
    EXPECT_EQ(std::vector<uint8_t>(got.noise, got.noise + got.noise_length), kNoise);
  }
}

TEST(PacketRoundTrip, InitiationWithLargestNoise_StillOneMinimumSizeDatagram) {
  auto noise = pattern_bytes(kMaxNoiseMessageSize, 3);
  InitiationPacket want = sample_initiation(true);
  want.noise = noise.data();
  want.noise_length = noise.size();
  want.suite = CipherSuiteId::kChaChaPoly;
  want.pattern = HandshakePattern::kIK;
  auto bytes = encode_with(encode_initiation, want);
  EXPECT_EQ(bytes.size(), kMinInitiationSize);
  InitiationPacket got;
  ASSERT_TRUE(decode_initiation(bytes.data(), bytes.size(), got));
  EXPECT_EQ(got.suite, CipherSuiteId::kChaChaPoly);
  EXPECT_EQ(got.pattern, HandshakePattern::kIK);
  EXPECT_EQ(std::vector<uint8_t>(got.noise, got.noise + got.noise_length), noise);
}

TEST(PacketRoundTrip, Response_SameFields) {
  ResponsePacket want = sample_response();
  auto bytes = encode_with(encode_response, want);
  EXPECT_EQ(bytes.size(), 12 + kNoise.size());
  EXPECT_EQ(peek_packet_kind(bytes.data(), bytes.size()), PacketKind::kResponse);
  ResponsePacket got;
  ASSERT_TRUE(decode_response(bytes.data(), bytes.size(), got));
  EXPECT_EQ(got.version, kProtocolVersion);
  EXPECT_EQ(got.receiver_id, want.receiver_id);
  EXPECT_EQ(got.sender_id, want.sender_id);
  EXPECT_EQ(std::vector<uint8_t>(got.noise, got.noise + got.noise_length), kNoise);
}

TEST(PacketRoundTrip, Finish_SameFields) {
  FinishPacket want = sample_finish();
  auto bytes = encode_with(encode_finish, want);
  EXPECT_EQ(bytes.size(), 11 + want.noise_length);
  EXPECT_EQ(peek_packet_kind(bytes.data(), bytes.size()), PacketKind::kFinish);
  FinishPacket got;
  ASSERT_TRUE(decode_finish(bytes.data(), bytes.size(), got));
  EXPECT_EQ(got.receiver_id, want.receiver_id);
  EXPECT_EQ(got.sender_id, want.sender_id);
  ASSERT_EQ(got.noise_length, want.noise_length);
  EXPECT_EQ(std::vector<uint8_t>(got.noise, got.noise + got.noise_length),
            std::vector<uint8_t>(want.noise, want.noise + want.noise_length));
}

TEST(PacketRoundTrip, EmptyNoiseMessages_Accepted) {
  ResponsePacket r = sample_response();
  r.noise = nullptr;
  r.noise_length = 0;
  auto bytes = encode_with(encode_response, r);
  ResponsePacket rgot;
  ASSERT_TRUE(decode_response(bytes.data(), bytes.size(), rgot));
  EXPECT_EQ(rgot.noise_length, 0u);
  FinishPacket f = sample_finish();
  f.noise = nullptr;
  f.noise_length = 0;
  bytes = encode_with(encode_finish, f);
  FinishPacket fgot;
  ASSERT_TRUE(decode_finish(bytes.data(), bytes.size(), fgot));
  EXPECT_EQ(fgot.noise_length, 0u);
}

TEST(PacketRoundTrip, Retry_SameFields) {
  RetryPacket want = sample_retry();
  auto bytes = encode_with(encode_retry, want);
  EXPECT_EQ(bytes.size(), 6 + kCookieSize);
  EXPECT_EQ(peek_packet_kind(bytes.data(), bytes.size()), PacketKind::kRetry);
  RetryPacket got;
  ASSERT_TRUE(decode_retry(bytes.data(), bytes.size(), got));
  EXPECT_EQ(got.version, kProtocolVersion);
  EXPECT_EQ(got.receiver_id, want.receiver_id);
  EXPECT_EQ(std::vector<uint8_t>(got.cookie, got.cookie + kCookieSize), kCookie);
}

TEST(PacketRoundTrip, Reject_SameFields) {
  RejectPacket want = sample_reject();
  auto bytes = encode_with(encode_reject, want);
  EXPECT_EQ(bytes, (std::vector<uint8_t>{0x84, 0x01, 0x0b, 0xad, 0xf0, 0x0d, 0x0f, 0xa5}));
  EXPECT_EQ(peek_packet_kind(bytes.data(), bytes.size()), PacketKind::kReject);
  RejectPacket got;
  ASSERT_TRUE(decode_reject(bytes.data(), bytes.size(), got));
  EXPECT_EQ(got.version, kProtocolVersion);
  EXPECT_EQ(got.receiver_id, want.receiver_id);
  EXPECT_EQ(got.reason, want.reason);
}

TEST(PacketRoundTrip, DataHeaderBothKeyPhases_SameFields) {
  for (bool key_phase : {false, true}) {
    auto bytes = sample_data_packet(key_phase);
    EXPECT_EQ(bytes[0], key_phase ? 0x41 : 0x40);
    EXPECT_EQ(std::vector<uint8_t>(bytes.begin() + 1, bytes.begin() + 9),
              (std::vector<uint8_t>{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}));
    EXPECT_EQ(bytes[9], 0x77) << "encode_data_header wrote past the header";
    EXPECT_EQ(peek_packet_kind(bytes.data(), bytes.size()), PacketKind::kData);
    DataHeader got;
    ASSERT_TRUE(decode_data_header(bytes.data(), bytes.size(), got));
    EXPECT_EQ(got.key_phase, key_phase);
    EXPECT_EQ(got.receiver_id, 0x12345678u);
    EXPECT_EQ(got.truncated_pn, 0x9abcdef0u);
  }
}

TEST(PacketDecode, EveryKind_AcceptedOnlyByItsOwnDecoder) {
  EXPECT_EQ(accepted_by(encode_with(encode_initiation, sample_initiation(true))), 1u << 0);
  EXPECT_EQ(accepted_by(encode_with(encode_response, sample_response())), 1u << 1);
  EXPECT_EQ(accepted_by(encode_with(encode_finish, sample_finish())), 1u << 2);
  EXPECT_EQ(accepted_by(encode_with(encode_retry, sample_retry())), 1u << 3);
  EXPECT_EQ(accepted_by(encode_with(encode_reject, sample_reject())), 1u << 4);
  EXPECT_EQ(accepted_by(sample_data_packet(true)), 1u << 5);
}

TEST(PacketDecode, TruncatedAtEveryByte_Rejected) {
  const std::vector<std::vector<uint8_t>> packets = {
      encode_with(encode_initiation, sample_initiation(false)),
      encode_with(encode_initiation, sample_initiation(true)),
      encode_with(encode_response, sample_response()),
      encode_with(encode_finish, sample_finish()),
      encode_with(encode_retry, sample_retry()),
      encode_with(encode_reject, sample_reject()),
      sample_data_packet(false, kDataHeaderSize + kAeadTagSize),  // the shortest data packet
  };
  for (const auto& bytes : packets) {
    ASSERT_NE(accepted_by(bytes), 0u);
    for (size_t len = 0; len < bytes.size(); ++len) {
      // A copy of exactly the prefix, so any read past it is caught by ASan.
      std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
      EXPECT_EQ(accepted_by(prefix), 0u) << "kind " << int(bytes[0]) << " cut to " << len;
    }
  }
}

TEST(PacketDecode, TrailingBytesAfterExactLayouts_Rejected) {
  const std::vector<std::vector<uint8_t>> packets = {
      encode_with(encode_response, sample_response()),
      encode_with(encode_finish, sample_finish()),
      encode_with(encode_retry, sample_retry()),
      encode_with(encode_reject, sample_reject()),
  };
  for (auto bytes : packets) {
    bytes.push_back(0);
    EXPECT_EQ(accepted_by(bytes), 0u) << "kind " << int(bytes[0]);
  }
}

TEST(PacketDecode, InitiationLongerThanMinimum_Accepted) {
  auto bytes = raw_initiation(1, 1, 1, 0, 0, 32, 32, 1400);
  InitiationPacket got;
  ASSERT_TRUE(decode_initiation(bytes.data(), bytes.size(), got));
  EXPECT_EQ(got.sender_id, 42u);
  EXPECT_EQ(got.noise_length, 32u);
}

TEST(PacketDecode, InitiationShorterThan1200_Rejected) {
  InitiationPacket got;
  auto bytes = raw_initiation(1, 1, 1, 0, 0, 32, 32, kMinInitiationSize);
  ASSERT_TRUE(decode_initiation(bytes.data(), bytes.size(), got));
  bytes.pop_back();
  EXPECT_FALSE(decode_initiation(bytes.data(), bytes.size(), got));
  // Unpadded: every field present, but the datagram is small.
  bytes = raw_initiation(1, 1, 1, 0, 0, 32, 32, 0);
  EXPECT_FALSE(decode_initiation(bytes.data(), bytes.size(), got));
}

TEST(PacketDecode, InitiationWrongCookieLength_Rejected) {
  InitiationPacket got;
  for (uint8_t cookie_len : {uint8_t{1}, uint8_t{kCookieSize - 1}, uint8_t{kCookieSize + 1}, uint8_t{255}}) {
    auto bytes = raw_initiation(1, 1, 1, cookie_len, cookie_len, 32, 32, kMinInitiationSize);
    EXPECT_FALSE(decode_initiation(bytes.data(), bytes.size(), got)) << int(cookie_len);
  }
  auto bytes = raw_initiation(1, 1, 1, kCookieSize, kCookieSize, 32, 32, kMinInitiationSize);
  EXPECT_TRUE(decode_initiation(bytes.data(), bytes.size(), got));
}

TEST(PacketDecode, InitiationUnknownSuiteOrPattern_Rejected) {
  InitiationPacket got;
  for (uint8_t bad : {uint8_t{0}, uint8_t{3}, uint8_t{0xff}}) {
    auto bytes = raw_initiation(1, bad, 1, 0, 0, 32, 32, kMinInitiationSize);
    EXPECT_FALSE(decode_initiation(bytes.data(), bytes.size(), got)) << "suite " << int(bad);
    bytes = raw_initiation(1, 1, bad, 0, 0, 32, 32, kMinInitiationSize);
    EXPECT_FALSE(decode_initiation(bytes.data(), bytes.size(), got)) << "pattern " << int(bad);
  }
  for (uint8_t suite : {1, 2}) {
    for (uint8_t pattern : {1, 2}) {
      auto bytes = raw_initiation(1, suite, pattern, 0, 0, 32, 32, kMinInitiationSize);
      EXPECT_TRUE(decode_initiation(bytes.data(), bytes.size(), got));
    }
  }
}

TEST(PacketDecode, InitiationUnknownVersion_DecodedSoCallerCanReject) {
  for (uint8_t version : {uint8_t{0}, uint8_t{2}, uint8_t{0xff}}) {
    auto bytes = raw_initiation(version, 1, 1, 0, 0, 32, 32, kMinInitiationSize);
    InitiationPacket got;
    ASSERT_TRUE(decode_initiation(bytes.data(), bytes.size(), got));
    EXPECT_EQ(got.version, version);
  }
}

TEST(PacketDecode, InitiationNoiseTooLongOrBeyondDatagram_Rejected) {
  InitiationPacket got;
  auto bytes = raw_initiation(1, 1, 1, 0, 0, kMaxNoiseMessageSize + 1, kMaxNoiseMessageSize + 1, 1500);
  EXPECT_FALSE(decode_initiation(bytes.data(), bytes.size(), got));
  bytes = raw_initiation(1, 1, 1, 0, 0, kMaxNoiseMessageSize, kMaxNoiseMessageSize, 1500);
  EXPECT_TRUE(decode_initiation(bytes.data(), bytes.size(), got));
  // A length far beyond the datagram (and the limit).
  bytes = raw_initiation(1, 1, 1, 0, 0, 0xffff, 0, kMinInitiationSize);
  EXPECT_FALSE(decode_initiation(bytes.data(), bytes.size(), got));
}

TEST(PacketDecode, ResponseOrFinishNoiseTooLong_Rejected) {
  std::vector<uint8_t> response = {0x81, 0x01, 0, 0, 0, 1, 0, 0, 0, 2, 0x04, 0x01};
  response.resize(response.size() + kMaxNoiseMessageSize + 1, 0x55);
  ResponsePacket r;
  EXPECT_FALSE(decode_response(response.data(), response.size(), r));
  std::vector<uint8_t> finish = {0x82, 0, 0, 0, 1, 0, 0, 0, 2, 0x04, 0x01};
  finish.resize(finish.size() + kMaxNoiseMessageSize + 1, 0x55);
  FinishPacket f;
  EXPECT_FALSE(decode_finish(finish.data(), finish.size(), f));
}

TEST(PacketDecode, ResponseRetryRejectWithOtherVersion_Rejected) {
  for (auto bytes :
       {encode_with(encode_response, sample_response()), encode_with(encode_retry, sample_retry()),
        encode_with(encode_reject, sample_reject())}) {
    ASSERT_NE(accepted_by(bytes), 0u);
    bytes[1] = kProtocolVersion + 1;
    EXPECT_EQ(accepted_by(bytes), 0u) << "kind " << int(bytes[0]);
  }
}

TEST(PacketDecode, DataHeaderReservedBitSet_Rejected) {
  for (int bit = 1; bit <= 5; ++bit) {
    auto bytes = sample_data_packet(false);
    bytes[0] |= uint8_t(1 << bit);
    EXPECT_EQ(peek_packet_kind(bytes.data(), bytes.size()), PacketKind::kData);
    DataHeader got;
    EXPECT_FALSE(decode_data_header(bytes.data(), bytes.size(), got)) << "bit " << bit;
  }
}

TEST(PacketDecode, DataPacketShorterThanHeaderPlusTag_Rejected) {
  auto bytes = sample_data_packet(true);
  DataHeader got;
  bytes.resize(kDataHeaderSize + kAeadTagSize);
  EXPECT_TRUE(decode_data_header(bytes.data(), bytes.size(), got));
  bytes.pop_back();
  EXPECT_FALSE(decode_data_header(bytes.data(), bytes.size(), got));
}

TEST(PacketPeek, EveryFirstByte_MapsToItsKind) {
  EXPECT_EQ(peek_packet_kind(nullptr, 0), PacketKind::kInvalid);
  for (int b = 0; b < 256; ++b) {
    uint8_t byte = uint8_t(b);
    PacketKind want = PacketKind::kInvalid;
    if (b >= 0x80 && b <= 0x84) want = static_cast<PacketKind>(b);
    if (b >= 0x40 && b <= 0x7f) want = PacketKind::kData;
    EXPECT_EQ(peek_packet_kind(&byte, 1), want) << "first byte " << b;
  }
}

TEST(PacketEncode, BufferTooSmall_ReturnsZero) {
  auto check = [](const char* what, size_t needed, const std::function<size_t(uint8_t*, size_t)>& encode) {
    for (size_t cap = 0; cap < needed; ++cap) {
      std::vector<uint8_t> buf(cap);
      EXPECT_EQ(encode(buf.data(), cap), 0u) << what << " capacity " << cap;
    }
    std::vector<uint8_t> buf(needed);
    EXPECT_EQ(encode(buf.data(), needed), needed) << what;
  };
  check("initiation", kMinInitiationSize,
        [](uint8_t* out, size_t cap) { return encode_initiation(sample_initiation(true), out, cap); });
  check("response", 12 + kNoise.size(),
        [](uint8_t* out, size_t cap) { return encode_response(sample_response(), out, cap); });
  check("finish", 11 + 64, [](uint8_t* out, size_t cap) { return encode_finish(sample_finish(), out, cap); });
  check("retry", 6 + kCookieSize,
        [](uint8_t* out, size_t cap) { return encode_retry(sample_retry(), out, cap); });
  check("reject", 8, [](uint8_t* out, size_t cap) { return encode_reject(sample_reject(), out, cap); });
}

TEST(PacketEncode, NoiseLongerThanMax_ReturnsZero) {
  auto noise = pattern_bytes(kMaxNoiseMessageSize + 1, 0);
  std::vector<uint8_t> buf(4096);
  InitiationPacket i = sample_initiation(false);
  i.noise = noise.data();
  i.noise_length = noise.size();
  EXPECT_EQ(encode_initiation(i, buf.data(), buf.size()), 0u);
  ResponsePacket r = sample_response();
  r.noise = noise.data();
  r.noise_length = noise.size();
  EXPECT_EQ(encode_response(r, buf.data(), buf.size()), 0u);
  FinishPacket f = sample_finish();
  f.noise = noise.data();
  f.noise_length = noise.size();
  EXPECT_EQ(encode_finish(f, buf.data(), buf.size()), 0u);
}

// --- Packet number reconstruction (RFC 9000 Appendix A.3 with a 32-bit window) ---

constexpr uint64_t k2Pow32 = uint64_t{1} << 32;
constexpr uint64_t k2Pow31 = uint64_t{1} << 31;
constexpr uint64_t k2Pow62 = uint64_t{1} << 62;

TEST(PacketNumber, Rfc9000Example_NumbersInsideOneWindowUnchanged) {
  // RFC 9000 A.3's example (largest 0xa82f30ea, received 0x9b32 in 16 bits -> 0xa82f9b32), where a 32-bit
  // window carries the whole number.
  EXPECT_EQ(decode_packet_number(0xa82f30ea, 0xa82f9b32), 0xa82f9b32u);
  // The same example shifted into the third 2^32 window.
  EXPECT_EQ(decode_packet_number(2 * k2Pow32 + 0xa82f30ea, 0xa82f9b32), 2 * k2Pow32 + 0xa82f9b32);
}

TEST(PacketNumber, NearZero_NeverBelowZero) {
  EXPECT_EQ(decode_packet_number(0, 0), 0u);
  EXPECT_EQ(decode_packet_number(0, 1), 1u);
  EXPECT_EQ(decode_packet_number(0, 5), 5u);
  // Closest would be negative (-1), which does not exist: the candidate in the first window stands.
  EXPECT_EQ(decode_packet_number(0, 0xffffffff), 0xffffffffu);
  EXPECT_EQ(decode_packet_number(10, 0x80000100), 0x80000100u);
}

TEST(PacketNumber, AcrossMultipleOf2Pow32_WrapsForward) {
  EXPECT_EQ(decode_packet_number(0xfffffff0, 0x00000005), k2Pow32 + 5);
  EXPECT_EQ(decode_packet_number(0xffffffff, 0), k2Pow32);
  EXPECT_EQ(decode_packet_number(7 * k2Pow32 - 1, 3), 7 * k2Pow32 + 3);
}

TEST(PacketNumber, AcrossMultipleOf2Pow32_DelayedPacketWrapsBack) {
  EXPECT_EQ(decode_packet_number(k2Pow32 + 5, 0xfffffff0), 0xfffffff0u);
  EXPECT_EQ(decode_packet_number(7 * k2Pow32 + 2, 0xffffffff), 7 * k2Pow32 - 1);
}

TEST(PacketNumber, HalfWindowEdges_WindowIsExpectedMinusHalfExclusiveToPlusHalfInclusive) {
  const uint64_t largest = 2 * k2Pow32 - 1;  // expected = 2 * 2^32
  const uint64_t expected = largest + 1;
  EXPECT_EQ(decode_packet_number(largest, 0x80000000), expected + k2Pow31);
  EXPECT_EQ(decode_packet_number(largest, 0x80000001), expected - k2Pow31 + 1);
  // Far future as seen from the middle of a window: past the half window means an old packet.
  const uint64_t mid = 5 * k2Pow32 + 100;  // expected = 5 * 2^32 + 101
  EXPECT_EQ(decode_packet_number(mid, uint32_t(101 + k2Pow31)), 5 * k2Pow32 + 101 + k2Pow31);
  EXPECT_EQ(decode_packet_number(mid, uint32_t(102 + k2Pow31)), 4 * k2Pow32 + 102 + k2Pow31);
  EXPECT_EQ(decode_packet_number(mid, 102), 5 * k2Pow32 + 102);
}

TEST(PacketNumber, Near2Pow62_NeverAboveLimit) {
  const uint64_t largest = k2Pow62 - 2;  // expected = 2^62 - 1, the largest packet number
  EXPECT_EQ(decode_packet_number(largest, 0xffffffff), k2Pow62 - 1);
  // Wrapping forward would leave the packet number space: the old packet number stands.
  EXPECT_EQ(decode_packet_number(largest, 5), k2Pow62 - k2Pow32 + 5);
  // A nonsensical largest (above 2^62) is clamped instead of overflowing.
  EXPECT_LT(decode_packet_number(~uint64_t{0}, 5), k2Pow62 + k2Pow32);
}

TEST(PacketNumber, AnyNumberWithinHalfWindowOfExpected_RestoredExactly) {
  const uint64_t seed = 20260101;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 100000; ++i) {
    uint64_t largest = rng() % (k2Pow62 - k2Pow32);
    if (i % 4 == 0) largest %= 4 * k2Pow32;  // many cases around the first windows
    uint64_t expected = largest + 1;
    int64_t delta = int64_t(rng() % k2Pow32) - int64_t(k2Pow31) + 1;  // in (-2^31, 2^31]
    if (delta < 0 && uint64_t(-delta) > expected) continue;
    uint64_t pn = expected + uint64_t(delta);
    ASSERT_EQ(decode_packet_number(largest, uint32_t(pn)), pn) << "seed " << seed << " largest " << largest;
  }
}

}  // namespace
}  // namespace peerlink::protocol
