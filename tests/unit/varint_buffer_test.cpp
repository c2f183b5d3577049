// Writer/Reader cursors and QUIC varints (src/transport/protocol/buffer.hpp).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "transport/protocol/buffer.hpp"

namespace peerlink::protocol {
namespace {

struct VarintCase {
  uint64_t value;
  size_t size;
};

// Every value at which the encoded size changes, from both sides.
constexpr VarintCase kBoundaries[] = {
    {0, 1},
    {63, 1},
    {64, 2},
    {16383, 2},
    {16384, 4},
    {(uint64_t{1} << 30) - 1, 4},
    {uint64_t{1} << 30, 8},
    {kVarintMax, 8},
};

TEST(Varint, RoundTripAtEveryBoundary_SameValueAndMinimalSize) {
  for (const VarintCase& c : kBoundaries) {
    SCOPED_TRACE(c.value);
    EXPECT_EQ(varint_size(c.value), c.size);
    std::array<uint8_t, 8> buf{};
    Writer w(buf.data(), buf.size());
    w.put_varint(c.value);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.size(), c.size);
    Reader r(buf.data(), w.size());
    uint64_t v = 0;
    ASSERT_TRUE(r.get_varint(v));
    EXPECT_EQ(v, c.value);
    EXPECT_TRUE(r.empty());
  }
}

TEST(Varint, EncodingMatchesRfc9000Examples) {
  // RFC 9000 §A.1 sample encodings.
  struct Sample {
    std::vector<uint8_t> bytes;
    uint64_t value;
  };
  const Sample samples[] = {
      {{0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}, 151288809941952652ull},
      {{0x9d, 0x7f, 0x3e, 0x7d}, 494878333},
      {{0x7b, 0xbd}, 15293},
      {{0x25}, 37},
  };
  for (const Sample& s : samples) {
    SCOPED_TRACE(s.value);
    Reader r(s.bytes.data(), s.bytes.size());
    uint64_t v = 0;
    ASSERT_TRUE(r.get_varint(v));
    EXPECT_EQ(v, s.value);
    std::array<uint8_t, 8> buf{};
    Writer w(buf.data(), buf.size());
    w.put_varint(s.value);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(w.size())),
              s.bytes);
  }
}

TEST(Varint, NonMinimalEncoding_DecodesToSameValue) {
  // 37 in two bytes (RFC 9000 §A.1: 0x4025).
  const uint8_t bytes[] = {0x40, 0x25};
  Reader r(bytes, sizeof bytes);
  uint64_t v = 0;
  ASSERT_TRUE(r.get_varint(v));
  EXPECT_EQ(v, 37u);
}

TEST(Varint, ValueOf2Pow62_RejectedByWriterWithoutWriting) {
  std::array<uint8_t, 16> buf;
  buf.fill(0xaa);
  Writer w(buf.data(), buf.size());
  w.put_varint(uint64_t{1} << 62);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 0u);
  for (uint8_t b : buf)
    EXPECT_EQ(b, 0xaa);
  w.put_varint(~uint64_t{0});
  EXPECT_FALSE(w.ok());
}

TEST(Varint, TruncatedEncoding_RejectedByReaderAtEveryLength) {
  for (const VarintCase& c : kBoundaries) {
    std::array<uint8_t, 8> buf{};
    Writer w(buf.data(), buf.size());
    w.put_varint(c.value);
    ASSERT_TRUE(w.ok());
    for (size_t len = 0; len < w.size(); ++len) {
      SCOPED_TRACE(testing::Message() << "value " << c.value << " cut to " << len);
      Reader r(buf.data(), len);
      uint64_t v = 12345;
      EXPECT_FALSE(r.get_varint(v));
      EXPECT_EQ(r.remaining(), len) << "a failed read must not advance";
    }
  }
}

TEST(Writer, OverflowingVarint_SetsNotOkAndWritesNothingPastCapacity) {
  std::array<uint8_t, 8> buf;
  buf.fill(0xaa);
  Writer w(buf.data(), 3);  // room for a 2-byte varint, not a 4-byte one
  w.put_varint(16384);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 0u);
  for (uint8_t b : buf)
    EXPECT_EQ(b, 0xaa);
}

TEST(Writer, AfterOverflow_LaterSmallWritesAreIgnored) {
  std::array<uint8_t, 8> buf;
  buf.fill(0xaa);
  Writer w(buf.data(), 4);
  w.put_u16(0x0102);
  w.put_u32(0x03040506);  // does not fit
  EXPECT_FALSE(w.ok());
  w.put_u8(0x07);  // would fit, but the writer has already failed
  w.put_varint(1);
  w.put_zeros(1);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(buf[0], 0x01);
  EXPECT_EQ(buf[1], 0x02);
  for (size_t i = 2; i < buf.size(); ++i)
    EXPECT_EQ(buf[i], 0xaa) << "byte " << i;
}

TEST(Writer, EveryPutOverflowingCapacity_FailsWithoutWriting) {
  for (int kind = 0; kind < 6; ++kind) {
    SCOPED_TRACE(kind);
    std::array<uint8_t, 16> buf;
    buf.fill(0xaa);
    Writer w(buf.data(), 1);
    w.put_u8(0x11);  // fills the capacity exactly
    ASSERT_TRUE(w.ok());
    const uint8_t bytes[2] = {1, 2};
    switch (kind) {
      case 0:
        w.put_u8(1);
        break;
      case 1:
        w.put_u16(1);
        break;
      case 2:
        w.put_u32(1);
        break;
      case 3:
        w.put_u64(1);
        break;
      case 4:
        w.put_bytes(bytes, sizeof bytes);
        break;
      case 5:
        w.put_zeros(1);
        break;
    }
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(w.size(), 1u);
    for (size_t i = 1; i < buf.size(); ++i)
      EXPECT_EQ(buf[i], 0xaa) << "byte " << i;
  }
}

TEST(Buffer, FixedWidthIntegers_BigEndianRoundTrip) {
  std::array<uint8_t, 15> buf{};
  Writer w(buf.data(), buf.size());
  w.put_u8(0x01);
  w.put_u16(0x0203);
  w.put_u32(0x04050607);
  w.put_u64(0x08090a0b0c0d0e0full);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.remaining(), 0u);
  for (size_t i = 0; i < buf.size(); ++i)
    EXPECT_EQ(buf[i], i + 1) << "byte " << i;

  Reader r(buf.data(), buf.size());
  uint8_t a = 0;
  uint16_t b = 0;
  uint32_t c = 0;
  uint64_t d = 0;
  ASSERT_TRUE(r.get_u8(a) && r.get_u16(b) && r.get_u32(c) && r.get_u64(d));
  EXPECT_EQ(a, 0x01);
  EXPECT_EQ(b, 0x0203);
  EXPECT_EQ(c, 0x04050607u);
  EXPECT_EQ(d, 0x08090a0b0c0d0e0full);
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.get_u8(a));
}

TEST(Reader, ShortInput_EveryGetFailsWithoutAdvancing) {
  const uint8_t bytes[7] = {1, 2, 3, 4, 5, 6, 7};
  Reader r(bytes, sizeof bytes);
  uint16_t b = 0;
  uint32_t c = 0;
  uint64_t d = 0;
  const uint8_t* p = nullptr;
  EXPECT_FALSE(r.get_u64(d));
  EXPECT_FALSE(r.get_bytes(8, p));
  EXPECT_FALSE(r.skip(8));
  EXPECT_EQ(r.remaining(), 7u);
  ASSERT_TRUE(r.get_u32(c));
  EXPECT_FALSE(r.get_u32(c));
  ASSERT_TRUE(r.get_u16(b));
  EXPECT_FALSE(r.get_u16(b));
  ASSERT_TRUE(r.get_bytes(1, p));
  EXPECT_EQ(*p, 7);
  EXPECT_TRUE(r.empty());
}

}  // namespace
}  // namespace peerlink::protocol
