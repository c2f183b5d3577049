// Transport parameters from an untrusted handshake payload: decoding never fails, never reads past the
// input, and yields at least the minimum credit; what it yields encodes and decodes back to itself.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/protocol/transport_params.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peerlink::protocol;
  const TransportParams p = decode_transport_params(data, size);
  FUZZ_CHECK(p.max_data >= kMinInitialCredit && p.max_lane_data >= kMinInitialCredit);
  const std::vector<uint8_t> bytes = encode_transport_params(p);
  const TransportParams q = decode_transport_params(bytes.data(), bytes.size());
  FUZZ_CHECK(q.max_data == p.max_data && q.max_lane_data == p.max_lane_data);
  return 0;
}
