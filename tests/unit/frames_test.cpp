// Frame encoders and decoders (src/transport/protocol/frames.hpp), including every kind of bad input.
#include "transport/protocol/frames.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace peerlink::protocol {
namespace {

// Builds raw frame bytes field by field, so bad inputs can be written that no encoder would produce.
class Bytes {
 public:
  Bytes& u8(uint8_t b) {
    data_.push_back(b);
    return *this;
  }
  Bytes& varint(uint64_t v) {
    uint8_t buf[8];
    Writer w(buf, sizeof buf);
    w.put_varint(v);
    EXPECT_TRUE(w.ok());
    data_.insert(data_.end(), buf, buf + w.size());
    return *this;
  }
  Bytes& fill(size_t n, uint8_t b) {
    data_.insert(data_.end(), n, b);
    return *this;
  }
  const std::vector<uint8_t>& get() const { return data_; }

 private:
  std::vector<uint8_t> data_;
};

template <typename EncodeFn>
std::vector<uint8_t> encode(EncodeFn fn) {
  std::vector<uint8_t> buf(8192);
  Writer w(buf.data(), buf.size());
  fn(w);
  EXPECT_TRUE(w.ok());
  buf.resize(w.size());
  return buf;
}

// Decodes exactly one frame that must fill the input.
FrameError decode_one(const std::vector<uint8_t>& bytes, Frame& f) {
  Reader r(bytes.data(), bytes.size());
  FrameError e = decode_frame(r, f);
  if (e == FrameError::kNone) {
    EXPECT_TRUE(r.empty()) << "frame did not consume its whole encoding";
  }
  return e;
}

FrameError decode_bytes(const std::vector<uint8_t>& bytes) {
  Frame f;
  Reader r(bytes.data(), bytes.size());
  return decode_frame(r, f);
}

AckFrame make_ack(std::initializer_list<PacketRange> ranges, uint64_t delay = 0) {
  AckFrame a;
  a.ack_delay_us = delay;
  for (const PacketRange& r : ranges)
    a.ranges[a.range_count++] = r;
  return a;
}

// kMaxAckRanges ranges of varied widths and gaps, descending from a large packet number.
AckFrame make_max_ack() {
  AckFrame a;
  a.ack_delay_us = 25000;
  uint64_t next_largest = uint64_t{1} << 40;
  for (size_t i = 0; i < kMaxAckRanges; ++i) {
    uint64_t width = i * 37 % 1000;
    a.ranges[i] = PacketRange{next_largest - width, next_largest};
    next_largest = a.ranges[i].smallest - 2 - (i * i * 101 % 70000);  // gap sizes cross varint boundaries
  }
  a.range_count = kMaxAckRanges;
  return a;
}

void expect_same_ack(const AckFrame& got, const AckFrame& want) {
  EXPECT_EQ(got.ack_delay_us, want.ack_delay_us);
  ASSERT_EQ(got.range_count, want.range_count);
  for (size_t i = 0; i < want.range_count; ++i) {
    EXPECT_EQ(got.ranges[i].smallest, want.ranges[i].smallest) << "range " << i;
    EXPECT_EQ(got.ranges[i].largest, want.ranges[i].largest) << "range " << i;
  }
}

const std::vector<uint8_t> kPayload = [] {
  std::vector<uint8_t> v(300);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = uint8_t(i * 7 + 1);
  return v;
}();

// One valid encoding of every frame type except padding, for the generic bad-input tests.
std::vector<std::vector<uint8_t>> valid_non_padding_frames() {
  UnreliableFrame u;
  u.lane = 200;
  u.message_id = 1u << 20;
  u.total_length = 1000;
  u.offset = 700;
  u.data = kPayload.data();
  u.length = kPayload.size();
  return {
      encode([](Writer& w) { encode_ping(w); }),
      encode([](Writer& w) {
        encode_ack(w, make_ack({{90, 100}}));
      }),
      encode([](Writer& w) { encode_ack(w, make_max_ack()); }),
      encode([](Writer& w) { encode_reliable(w, 3, 70000, kPayload.data(), kPayload.size()); }),
      encode([&](Writer& w) { encode_unreliable(w, u); }),
      encode([](Writer& w) { encode_max_data(w, uint64_t{1} << 33); }),
      encode([](Writer& w) { encode_max_lane_data(w, 255, 1u << 20); }),
      encode([](Writer& w) { encode_close(w, 4006, "bad frame"); }),
      encode([](Writer& w) { encode_ack_frequency(w, 70000, 10); }),
  };
}

TEST(FrameRoundTrip, Ping_DecodesAsPing) {
  auto bytes = encode([](Writer& w) { encode_ping(w); });
  EXPECT_EQ(bytes, std::vector<uint8_t>{0x01});
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  EXPECT_EQ(f.type, FrameType::kPing);
}

TEST(FrameRoundTrip, Padding_RunDecodesAsOneFrameOfItsLength) {
  auto bytes = encode([](Writer& w) { encode_padding(w, 37); });
  EXPECT_EQ(bytes, std::vector<uint8_t>(37, 0));
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  EXPECT_EQ(f.type, FrameType::kPadding);
  EXPECT_EQ(f.padding_length, 37u);
}

TEST(FrameRoundTrip, AckWithOneRange_SameRangeAndDelay) {
  for (const AckFrame& want :
       {make_ack({{0, 0}}), make_ack({{5, 5}}, 1), make_ack({{0, 1000}}, 77),
        make_ack({{kVarintMax, kVarintMax}}), make_ack({{0, kVarintMax}}, kVarintMax)}) {
    auto bytes = encode([&](Writer& w) { encode_ack(w, want); });
    EXPECT_EQ(bytes.size(), ack_frame_size(want));
    Frame f;
    ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
    ASSERT_EQ(f.type, FrameType::kAck);
    expect_same_ack(f.ack, want);
  }
}

TEST(FrameRoundTrip, AckWithManyRanges_SameRanges) {
  // Gaps of exactly one missing packet, and a last range reaching packet 0.
  AckFrame want = make_ack({{100, 120}, {98, 98}, {50, 96}, {10, 10}, {0, 8}}, 12345);
  auto bytes = encode([&](Writer& w) { encode_ack(w, want); });
  EXPECT_EQ(bytes.size(), ack_frame_size(want));
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  expect_same_ack(f.ack, want);
}

TEST(FrameRoundTrip, AckWithMaxRanges_SameRanges) {
  AckFrame want = make_max_ack();
  auto bytes = encode([&](Writer& w) { encode_ack(w, want); });
  EXPECT_EQ(bytes.size(), ack_frame_size(want));
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  expect_same_ack(f.ack, want);
}

TEST(FrameDecode, AckRangesFollowRfc9000GapAndLengthSemantics) {
  // largest 100, first range 2 -> [98, 100]; gap 0 -> largest 98-0-2 = 96 (only 97 missing);
  // length 1 -> [95, 96]; gap 3 -> largest 95-3-2 = 90; length 0 -> [90, 90].
  auto bytes =
      Bytes().u8(0x02).varint(100).varint(8).varint(2).varint(2).varint(0).varint(1).varint(3).varint(0);
  Frame f;
  ASSERT_EQ(decode_one(bytes.get(), f), FrameError::kNone);
  expect_same_ack(f.ack, make_ack({{98, 100}, {95, 96}, {90, 90}}, 8));
}

TEST(FrameRoundTrip, Reliable_SameFieldsAndPayloadPointsIntoInput) {
  auto bytes = encode([](Writer& w) { encode_reliable(w, 7, 123456789, kPayload.data(), kPayload.size()); });
  EXPECT_EQ(bytes.size(), reliable_frame_header_size(7, 123456789, kPayload.size()) + kPayload.size());
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  ASSERT_EQ(f.type, FrameType::kReliable);
  EXPECT_EQ(f.reliable.lane, 7u);
  EXPECT_EQ(f.reliable.offset, 123456789u);
  ASSERT_EQ(f.reliable.length, kPayload.size());
  EXPECT_EQ(f.reliable.data, bytes.data() + bytes.size() - kPayload.size());
  EXPECT_EQ(std::vector<uint8_t>(f.reliable.data, f.reliable.data + f.reliable.length), kPayload);
}

TEST(FrameRoundTrip, ReliableAtLimits_Accepted) {
  // Highest lane, empty payload at the highest offset.
  auto bytes = encode([](Writer& w) { encode_reliable(w, kMaxLanes - 1, kMaxStreamOffset, nullptr, 0); });
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  EXPECT_EQ(f.reliable.lane, kMaxLanes - 1);
  EXPECT_EQ(f.reliable.offset, kMaxStreamOffset);
  EXPECT_EQ(f.reliable.length, 0u);
  // The last byte of the stream.
  bytes = encode([](Writer& w) { encode_reliable(w, 0, kMaxStreamOffset - 1, kPayload.data(), 1); });
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  EXPECT_EQ(f.reliable.offset, kMaxStreamOffset - 1);
  EXPECT_EQ(f.reliable.length, 1u);
}

TEST(FrameRoundTrip, Unreliable_SameFields) {
  UnreliableFrame want;
  want.lane = 255;
  want.message_id = uint64_t{1} << 35;
  want.total_length = kMaxUnreliableMessageSize;
  want.offset = kMaxUnreliableMessageSize - kPayload.size();  // the last fragment of a maximal message
  want.data = kPayload.data();
  want.length = kPayload.size();
  auto bytes = encode([&](Writer& w) { encode_unreliable(w, want); });
  EXPECT_EQ(bytes.size(), unreliable_frame_header_size(want) + kPayload.size());
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  ASSERT_EQ(f.type, FrameType::kUnreliable);
  EXPECT_EQ(f.unreliable.lane, want.lane);
  EXPECT_EQ(f.unreliable.message_id, want.message_id);
  EXPECT_EQ(f.unreliable.total_length, want.total_length);
  EXPECT_EQ(f.unreliable.offset, want.offset);
  ASSERT_EQ(f.unreliable.length, want.length);
  EXPECT_EQ(std::vector<uint8_t>(f.unreliable.data, f.unreliable.data + f.unreliable.length), kPayload);
}

TEST(FrameRoundTrip, MaxDataAndMaxLaneData_SameValues) {
  for (uint64_t max : {uint64_t{0}, uint64_t{63}, uint64_t{1} << 40, kVarintMax}) {
    auto bytes = encode([&](Writer& w) { encode_max_data(w, max); });
    Frame f;
    ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
    ASSERT_EQ(f.type, FrameType::kMaxData);
    EXPECT_EQ(f.max_data.max, max);

    bytes = encode([&](Writer& w) { encode_max_lane_data(w, 42, max); });
    ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
    ASSERT_EQ(f.type, FrameType::kMaxLaneData);
    EXPECT_EQ(f.max_lane_data.lane, 42u);
    EXPECT_EQ(f.max_lane_data.max, max);
  }
}

TEST(FrameRoundTrip, Close_SameReasonAndDebugText) {
  for (uint32_t reason : {0u, 4006u, 0xffffffffu}) {
    auto bytes = encode([&](Writer& w) { encode_close(w, reason, "peer sent garbage"); });
    EXPECT_EQ(bytes.size(), close_frame_size(reason, "peer sent garbage"));
    Frame f;
    ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
    ASSERT_EQ(f.type, FrameType::kClose);
    EXPECT_EQ(f.close.reason, reason);
    EXPECT_EQ(f.close.debug, "peer sent garbage");
  }
}

TEST(FrameRoundTrip, AckFrequency_SameSequenceAndThreshold) {
  for (uint64_t threshold : {uint64_t{1}, uint64_t{10}, kMaxAckThreshold}) {
    auto bytes = encode([&](Writer& w) { encode_ack_frequency(w, 12345, threshold); });
    Frame f;
    ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
    ASSERT_EQ(f.type, FrameType::kAckFrequency);
    EXPECT_EQ(f.ack_frequency.sequence, 12345u);
    EXPECT_EQ(f.ack_frequency.threshold, threshold);
  }
}

TEST(FrameDecode, AckFrequencyThresholdZeroOrAboveMax_InvalidValue) {
  for (uint64_t threshold : {uint64_t{0}, kMaxAckThreshold + 1, uint64_t{1} << 40}) {
    std::vector<uint8_t> bytes(16);
    Writer w(bytes.data(), bytes.size());
    w.put_u8(uint8_t(FrameType::kAckFrequency));
    w.put_varint(1);
    w.put_varint(threshold);
    bytes.resize(w.size());
    EXPECT_EQ(decode_bytes(bytes), FrameError::kInvalidValue) << threshold;
    std::vector<uint8_t> out(16);
    Writer enc(out.data(), out.size());
    encode_ack_frequency(enc, 1, threshold);
    EXPECT_FALSE(enc.ok()) << "the encoder refuses what the decoder rejects";
  }
}

TEST(FrameEncode, CloseDebugLongerThanLimit_TruncatedToLimit) {
  std::string text(kMaxCloseDebugLength + 100, 'x');
  text[kMaxCloseDebugLength - 1] = 'y';
  auto bytes = encode([&](Writer& w) { encode_close(w, 1000, text); });
  EXPECT_EQ(bytes.size(), close_frame_size(1000, text));
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  EXPECT_EQ(f.close.debug, std::string_view(text).substr(0, kMaxCloseDebugLength));
}

TEST(FrameDecode, SeveralFramesInOnePacket_DecodedInOrder) {
  auto bytes = encode([](Writer& w) {
    encode_ping(w);
    encode_max_data(w, 1000);
    encode_padding(w, 3);
    encode_reliable(w, 1, 0, kPayload.data(), 4);
    encode_padding(w, 1);
  });
  Reader r(bytes.data(), bytes.size());
  Frame f;
  std::vector<FrameType> types;
  while (!r.empty()) {
    ASSERT_EQ(decode_frame(r, f), FrameError::kNone);
    types.push_back(f.type);
    if (f.type == FrameType::kPadding) {
      EXPECT_EQ(f.padding_length, types.size() == 3 ? 3u : 1u);
    }
  }
  EXPECT_EQ(types, (std::vector<FrameType>{FrameType::kPing, FrameType::kMaxData, FrameType::kPadding,
                                           FrameType::kReliable, FrameType::kPadding}));
}

TEST(FrameDecode, PaddingRun_ConsumesOnlyZeroBytes) {
  const std::vector<uint8_t> bytes = {0, 0, 0, 0x01, 0, 0x01};
  Reader r(bytes.data(), bytes.size());
  Frame f;
  ASSERT_EQ(decode_frame(r, f), FrameError::kNone);
  EXPECT_EQ(f.type, FrameType::kPadding);
  EXPECT_EQ(f.padding_length, 3u);
  ASSERT_EQ(decode_frame(r, f), FrameError::kNone);
  EXPECT_EQ(f.type, FrameType::kPing);
  ASSERT_EQ(decode_frame(r, f), FrameError::kNone);
  EXPECT_EQ(f.type, FrameType::kPadding);
  EXPECT_EQ(f.padding_length, 1u);
  ASSERT_EQ(decode_frame(r, f), FrameError::kNone);
  EXPECT_EQ(f.type, FrameType::kPing);
  EXPECT_TRUE(r.empty());
}

TEST(FrameDecode, LongPaddingToEndOfPacket_OneFrame) {
  std::vector<uint8_t> bytes(1500, 0);
  Frame f;
  ASSERT_EQ(decode_one(bytes, f), FrameError::kNone);
  EXPECT_EQ(f.padding_length, 1500u);
}

TEST(FrameDecode, EmptyInput_Truncated) {
  EXPECT_EQ(decode_bytes({}), FrameError::kTruncated);
}

TEST(FrameDecode, TruncatedAtEveryByte_RejectedAsTruncated) {
  for (const auto& bytes : valid_non_padding_frames()) {
    ASSERT_EQ(decode_bytes(bytes), FrameError::kNone);
    for (size_t len = 0; len < bytes.size(); ++len) {
      SCOPED_TRACE(testing::Message()
                   << "type " << int(bytes[0]) << " cut to " << len << " of " << bytes.size());
      // A copy of exactly the prefix, so a read past it is an ASan error rather than a silent overread.
      std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
      EXPECT_EQ(decode_bytes(prefix), FrameError::kTruncated);
    }
  }
}

TEST(FrameDecode, UnknownTypeByte_RejectedAsUnknownType) {
  for (int type = 0x09; type <= 0xff; ++type) {
    SCOPED_TRACE(type);
    EXPECT_EQ(decode_bytes(Bytes().u8(uint8_t(type)).fill(16, 0x01).get()), FrameError::kUnknownType);
  }
}

TEST(FrameDecode, ReliableLengthBeyondInput_Truncated) {
  auto bytes = Bytes().u8(0x03).varint(1).varint(0).varint(10).fill(9, 0xab);
  EXPECT_EQ(decode_bytes(bytes.get()), FrameError::kTruncated);
  bytes = Bytes().u8(0x03).varint(1).varint(0).varint(kVarintMax - 5).fill(9, 0xab);
  EXPECT_EQ(decode_bytes(bytes.get()), FrameError::kTruncated);
}

TEST(FrameDecode, UnreliableLengthBeyondInput_Truncated) {
  auto bytes = Bytes().u8(0x04).varint(1).varint(9).varint(100).varint(0).varint(50).fill(49, 0xab);
  EXPECT_EQ(decode_bytes(bytes.get()), FrameError::kTruncated);
}

TEST(FrameDecode, CloseDebugLengthBeyondInput_Truncated) {
  auto bytes = Bytes().u8(0x07).varint(1000).varint(20).fill(19, 'a');
  EXPECT_EQ(decode_bytes(bytes.get()), FrameError::kTruncated);
}

TEST(FrameDecode, LaneAtOrAboveMax_InvalidValue) {
  for (uint64_t lane : {uint64_t{kMaxLanes}, uint64_t{kMaxLanes} + 1, kVarintMax}) {
    SCOPED_TRACE(lane);
    EXPECT_EQ(decode_bytes(Bytes().u8(0x03).varint(lane).varint(0).varint(1).fill(1, 0).get()),
              FrameError::kInvalidValue);
    EXPECT_EQ(
        decode_bytes(Bytes().u8(0x04).varint(lane).varint(0).varint(1).varint(0).varint(1).fill(1, 0).get()),
        FrameError::kInvalidValue);
    EXPECT_EQ(decode_bytes(Bytes().u8(0x06).varint(lane).varint(100).get()), FrameError::kInvalidValue);
  }
  EXPECT_EQ(decode_bytes(Bytes().u8(0x06).varint(kMaxLanes - 1).varint(100).get()), FrameError::kNone);
}

TEST(FrameDecode, ReliableOffsetPlusLengthBeyondMax_InvalidValue) {
  EXPECT_EQ(decode_bytes(Bytes().u8(0x03).varint(0).varint(kMaxStreamOffset).varint(1).fill(1, 0).get()),
            FrameError::kInvalidValue);
  EXPECT_EQ(decode_bytes(Bytes().u8(0x03).varint(0).varint(kMaxStreamOffset - 2).varint(3).fill(3, 0).get()),
            FrameError::kInvalidValue);
  EXPECT_EQ(decode_bytes(Bytes().u8(0x03).varint(0).varint(kMaxStreamOffset - 3).varint(3).fill(3, 0).get()),
            FrameError::kNone);
}

TEST(FrameDecode, UnreliableFragmentBeyondTotal_InvalidValue) {
  auto frame = [](uint64_t total, uint64_t offset, uint64_t length) {
    return decode_bytes(Bytes()
                            .u8(0x04)
                            .varint(0)
                            .varint(1)
                            .varint(total)
                            .varint(offset)
                            .varint(length)
                            .fill(length, 0x5a)
                            .get());
  };
  EXPECT_EQ(frame(100, 90, 10), FrameError::kNone);
  EXPECT_EQ(frame(100, 91, 10), FrameError::kInvalidValue);
  EXPECT_EQ(frame(100, 0, 101), FrameError::kInvalidValue);
  EXPECT_EQ(frame(100, 101, 1), FrameError::kInvalidValue);
  EXPECT_EQ(frame(0, 0, 1), FrameError::kInvalidValue);
  // An offset so large that offset + length would wrap if computed naively.
  EXPECT_EQ(decode_bytes(Bytes().u8(0x04).varint(0).varint(1).varint(100).varint(kVarintMax).varint(2).get()),
            FrameError::kInvalidValue);
}

TEST(FrameDecode, UnreliableEmptyFragment_InvalidValue) {
  EXPECT_EQ(decode_bytes(Bytes().u8(0x04).varint(0).varint(1).varint(100).varint(0).varint(0).get()),
            FrameError::kInvalidValue);
}

TEST(FrameDecode, UnreliableTotalAbove64KiB_InvalidValue) {
  auto total = [](uint64_t t) {
    return decode_bytes(Bytes().u8(0x04).varint(0).varint(1).varint(t).varint(0).varint(1).fill(1, 0).get());
  };
  EXPECT_EQ(total(kMaxUnreliableMessageSize), FrameError::kNone);
  EXPECT_EQ(total(kMaxUnreliableMessageSize + 1), FrameError::kInvalidValue);
  EXPECT_EQ(total(kVarintMax), FrameError::kInvalidValue);
}

TEST(FrameDecode, CloseDebugTooLong_InvalidValue) {
  EXPECT_EQ(
      decode_bytes(
          Bytes().u8(0x07).varint(1).varint(kMaxCloseDebugLength).fill(kMaxCloseDebugLength, 'a').get()),
      FrameError::kNone);
  EXPECT_EQ(decode_bytes(Bytes()
                             .u8(0x07)
                             .varint(1)
                             .varint(kMaxCloseDebugLength + 1)
                             .fill(kMaxCloseDebugLength + 1, 'a')
                             .get()),
            FrameError::kInvalidValue);
}

TEST(FrameDecode, CloseReasonAboveUint32_InvalidValue) {
  EXPECT_EQ(decode_bytes(Bytes().u8(0x07).varint(0xffffffffu).varint(0).get()), FrameError::kNone);
  EXPECT_EQ(decode_bytes(Bytes().u8(0x07).varint(uint64_t{1} << 32).varint(0).get()),
            FrameError::kInvalidValue);
}

TEST(FrameDecode, AckFirstRangeLargerThanLargest_InvalidAckRanges) {
  EXPECT_EQ(decode_bytes(Bytes().u8(0x02).varint(10).varint(0).varint(0).varint(10).get()),
            FrameError::kNone);
  EXPECT_EQ(decode_bytes(Bytes().u8(0x02).varint(10).varint(0).varint(0).varint(11).get()),
            FrameError::kInvalidAckRanges);
}

TEST(FrameDecode, AckGapBelowZero_InvalidAckRanges) {
  // First range [5, 10]; the next range's largest = 5 - gap - 2, so gap 3 reaches 0 and gap 4 underflows.
  auto ack = [](uint64_t gap, uint64_t length) {
    return decode_bytes(
        Bytes().u8(0x02).varint(10).varint(0).varint(1).varint(5).varint(gap).varint(length).get());
  };
  EXPECT_EQ(ack(3, 0), FrameError::kNone);
  EXPECT_EQ(ack(4, 0), FrameError::kInvalidAckRanges);
  EXPECT_EQ(ack(kVarintMax, 0), FrameError::kInvalidAckRanges);
  // A first range ending at 1 or 0 leaves no room for another range at all.
  EXPECT_EQ(decode_bytes(Bytes().u8(0x02).varint(10).varint(0).varint(1).varint(9).varint(0).varint(0).get()),
            FrameError::kInvalidAckRanges);
  EXPECT_EQ(
      decode_bytes(Bytes().u8(0x02).varint(10).varint(0).varint(1).varint(10).varint(0).varint(0).get()),
      FrameError::kInvalidAckRanges);
}

TEST(FrameDecode, AckRangeLengthBelowZero_InvalidAckRanges) {
  // First range [5, 10]; gap 0 -> next largest 3, so length 3 reaches 0 and length 4 underflows.
  auto ack = [](uint64_t length) {
    return decode_bytes(
        Bytes().u8(0x02).varint(10).varint(0).varint(1).varint(5).varint(0).varint(length).get());
  };
  EXPECT_EQ(ack(3), FrameError::kNone);
  EXPECT_EQ(ack(4), FrameError::kInvalidAckRanges);
}

TEST(FrameDecode, AckWithMoreThanMaxRanges_TooManyAckRanges) {
  auto ack_with = [](uint64_t additional) {
    Bytes b;
    b.u8(0x02).varint(1000000).varint(0).varint(additional).varint(0);
    for (uint64_t i = 0; i < additional; ++i)
      b.varint(0).varint(0);
    return decode_bytes(b.get());
  };
  EXPECT_EQ(ack_with(kMaxAckRanges - 1), FrameError::kNone);
  EXPECT_EQ(ack_with(kMaxAckRanges), FrameError::kTooManyAckRanges);
  // A huge claimed count is rejected before any range is read.
  EXPECT_EQ(decode_bytes(Bytes().u8(0x02).varint(10).varint(0).varint(kVarintMax).varint(0).get()),
            FrameError::kTooManyAckRanges);
}

TEST(FrameEncode, InvalidInput_WriterFailsInsteadOfWritingUndecodableFrame) {
  auto fails = [](auto fn) {
    uint8_t buf[512];
    Writer w(buf, sizeof buf);
    fn(w);
    return !w.ok();
  };
  EXPECT_TRUE(fails([](Writer& w) { encode_reliable(w, kMaxLanes, 0, kPayload.data(), 1); }));
  EXPECT_TRUE(fails([](Writer& w) { encode_reliable(w, 0, kMaxStreamOffset, kPayload.data(), 1); }));
  EXPECT_TRUE(fails([](Writer& w) { encode_max_lane_data(w, kMaxLanes, 1); }));
  EXPECT_TRUE(fails([](Writer& w) { encode_max_data(w, kVarintMax + 1); }));
  EXPECT_TRUE(fails([](Writer& w) { encode_ack(w, AckFrame{}); }));                      // no range
  EXPECT_TRUE(fails([](Writer& w) { encode_ack(w, make_ack({{10, 5}})); }));             // smallest > largest
  EXPECT_TRUE(fails([](Writer& w) { encode_ack(w, make_ack({{10, 20}, {5, 9}})); }));    // adjacent: no gap
  EXPECT_TRUE(fails([](Writer& w) { encode_ack(w, make_ack({{10, 20}, {15, 30}})); }));  // not descending
  UnreliableFrame u;
  u.total_length = 10;
  u.offset = 5;
  u.length = 6;
  u.data = kPayload.data();
  EXPECT_TRUE(fails([&](Writer& w) { encode_unreliable(w, u); }));
  u.length = 0;
  EXPECT_TRUE(fails([&](Writer& w) { encode_unreliable(w, u); }));
  u.length = 1;
  u.total_length = kMaxUnreliableMessageSize + 1;
  EXPECT_TRUE(fails([&](Writer& w) { encode_unreliable(w, u); }));
  u.total_length = 10;
  EXPECT_FALSE(fails([&](Writer& w) { encode_unreliable(w, u); }));
}

TEST(FrameEncode, NotEnoughRoom_WriterFailsWithinCapacity) {
  for (const auto& bytes : valid_non_padding_frames()) {
    for (size_t cap = 0; cap < bytes.size(); ++cap) {
      // Re-encode each frame into a buffer one byte too small (or less); it must fail, never overrun.
      std::vector<uint8_t> buf(cap);
      Writer w(buf.data(), buf.size());
      Frame f;
      Reader r(bytes.data(), bytes.size());
      ASSERT_EQ(decode_frame(r, f), FrameError::kNone);
      switch (f.type) {
        case FrameType::kPing:
          encode_ping(w);
          break;
        case FrameType::kAck:
          encode_ack(w, f.ack);
          break;
        case FrameType::kReliable:
          encode_reliable(w, f.reliable.lane, f.reliable.offset, f.reliable.data, f.reliable.length);
          break;
        case FrameType::kUnreliable:
          encode_unreliable(w, f.unreliable);
          break;
        case FrameType::kMaxData:
          encode_max_data(w, f.max_data.max);
          break;
        case FrameType::kMaxLaneData:
          encode_max_lane_data(w, f.max_lane_data.lane, f.max_lane_data.max);
          break;
        case FrameType::kClose:
          encode_close(w, f.close.reason, f.close.debug);
          break;
        case FrameType::kAckFrequency:
          encode_ack_frequency(w, f.ack_frequency.sequence, f.ack_frequency.threshold);
          break;
        case FrameType::kPadding:
          break;
      }
      EXPECT_FALSE(w.ok()) << "type " << int(bytes[0]) << " capacity " << cap;
      EXPECT_LE(w.size(), cap);
    }
  }
}

TEST(FrameErrorText, ToString_DistinctTextForEveryError) {
  std::set<std::string> texts;
  for (FrameError e :
       {FrameError::kNone, FrameError::kTruncated, FrameError::kUnknownType, FrameError::kInvalidValue,
        FrameError::kTooManyAckRanges, FrameError::kInvalidAckRanges}) {
    const char* s = to_string(e);
    ASSERT_NE(s, nullptr);
    EXPECT_NE(std::string(s), "");
    texts.insert(s);
  }
  EXPECT_EQ(texts.size(), 6u);
}

}  // namespace
}  // namespace peerlink::protocol
