// Transport parameters (src/transport/protocol/transport_params.cpp): round trip, unknown ids skipped,
// malformed and hostile input leaving safe defaults.
#include "transport/protocol/transport_params.hpp"

#include <gtest/gtest.h>

#include "transport/protocol/buffer.hpp"

namespace peerlink::protocol {
namespace {

std::vector<uint8_t> entries(std::initializer_list<std::pair<uint64_t, std::vector<uint8_t>>> list) {
  std::vector<uint8_t> out(256);
  Writer w(out.data(), out.size());
  for (const auto& [id, value] : list) {
    w.put_varint(id);
    w.put_varint(value.size());
    w.put_bytes(value.data(), value.size());
  }
  out.resize(w.size());
  return out;
}

std::vector<uint8_t> varint(uint64_t v) {
  std::vector<uint8_t> out(8);
  Writer w(out.data(), out.size());
  w.put_varint(v);
  out.resize(w.size());
  return out;
}

TEST(TransportParams, RoundTrip) {
  TransportParams p;
  p.max_data = 96u << 20;
  p.max_lane_data = (1ull << 40) + 3;
  const std::vector<uint8_t> bytes = encode_transport_params(p);
  const TransportParams q = decode_transport_params(bytes.data(), bytes.size());
  EXPECT_EQ(q.max_data, p.max_data);
  EXPECT_EQ(q.max_lane_data, p.max_lane_data);
}

TEST(TransportParams, UnknownIdsSkipped_KnownOnesStillRead) {
  auto bytes = entries({{77, {1, 2, 3}}, {1, varint(1 << 20)}, {99, {}}, {2, varint(2 << 20)}});
  const TransportParams p = decode_transport_params(bytes.data(), bytes.size());
  EXPECT_EQ(p.max_data, 1u << 20);
  EXPECT_EQ(p.max_lane_data, 2u << 20);
}

TEST(TransportParams, MissingTinyOrMalformed_LeaveTheMinimumCredit) {
  const TransportParams none = decode_transport_params(nullptr, 0);
  EXPECT_EQ(none.max_data, kMinInitialCredit);
  EXPECT_EQ(none.max_lane_data, kMinInitialCredit);
  auto tiny = entries({{1, varint(0)}, {2, varint(10)}});  // zero credit would stall: raised
  TransportParams p = decode_transport_params(tiny.data(), tiny.size());
  EXPECT_EQ(p.max_data, kMinInitialCredit);
  EXPECT_EQ(p.max_lane_data, kMinInitialCredit);
  auto not_varint = entries({{1, {}}, {2, {0xC0}}});  // empty value; a truncated 8-byte varint
  p = decode_transport_params(not_varint.data(), not_varint.size());
  EXPECT_EQ(p.max_data, kMinInitialCredit);
  EXPECT_EQ(p.max_lane_data, kMinInitialCredit);
  // A length beyond the input ends the list: what came before it counts, nothing after.
  auto cut = entries({{1, varint(3 << 20)}});
  cut.push_back(2);
  cut.push_back(40);  // 40 bytes announced, none there
  p = decode_transport_params(cut.data(), cut.size());
  EXPECT_EQ(p.max_data, 3u << 20);
  EXPECT_EQ(p.max_lane_data, kMinInitialCredit);
  const uint8_t garbage[] = {0xFF, 0xFF, 0xFF};
  p = decode_transport_params(garbage, sizeof garbage);
  EXPECT_EQ(p.max_data, kMinInitialCredit);
}

}  // namespace
}  // namespace peerlink::protocol
