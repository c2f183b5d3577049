// A lane's reliable stream from an untrusted peer: the input is cut into segments (their lengths from its
// first bytes) delivered out of order; the messages parsed must be exactly those of a straightforward
// parse of the same bytes delivered in order, and nothing may crash or grow without bound.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/protocol/reliable_recv_stream.hpp"

namespace {

using Bytes = std::vector<uint8_t>;
using peerlink::protocol::ReliableRecvStream;
constexpr size_t kMaxMessage = 4096;

// Parses the whole stream in one segment.
ReliableRecvStream::Result in_order(const uint8_t* data, size_t size, std::vector<Bytes>& out) {
  ReliableRecvStream r;
  return r.on_data(0, data, size, ~uint64_t(0) >> 2, kMaxMessage, [&](Bytes&& m) { out.push_back(m); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const size_t cuts = data[0] % 8 + 1;
  const uint8_t* stream = data + 1;
  const size_t len = size - 1;
  std::vector<Bytes> expected;
  const auto expected_result = in_order(stream, len, expected);

  // Segments: `cuts` pieces, sent last to first (all out of order but the first one sent last).
  std::vector<std::pair<size_t, size_t>> segments;
  size_t at = 0;
  for (size_t i = 0; i < cuts && at < len; ++i) {
    size_t piece = i + 1 == cuts ? len - at : (size_t(stream[at]) * 7 + 1) % (len - at) + 1;
    segments.emplace_back(at, piece);
    at += piece;
  }
  ReliableRecvStream r;
  std::vector<Bytes> got;
  auto result = ReliableRecvStream::Result::kOk;
  for (auto it = segments.rbegin(); it != segments.rend() && result == ReliableRecvStream::Result::kOk; ++it)
    result = r.on_data(it->first, stream + it->first, it->second, ~uint64_t(0) >> 2, kMaxMessage,
                       [&](Bytes&& m) { got.push_back(m); });
  FUZZ_CHECK(result == expected_result);
  if (result == ReliableRecvStream::Result::kOk) {
    FUZZ_CHECK(got == expected);
    FUZZ_CHECK(r.consumed_offset() == len && r.out_of_order_bytes() == 0);
  }
  return 0;
}
