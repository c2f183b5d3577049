#include "transport/protocol/transport_params.hpp"

#include <algorithm>

#include "transport/protocol/buffer.hpp"

namespace peerlink::protocol {
namespace {
enum ParamId : uint64_t { kParamMaxData = 1, kParamMaxLaneData = 2 };

void put_param(Writer& w, uint64_t id, uint64_t value) {
  w.put_varint(id);
  w.put_varint(varint_size(value));
  w.put_varint(value);
}
}  // namespace

std::vector<uint8_t> encode_transport_params(const TransportParams& params) {
  std::vector<uint8_t> out(32);
  Writer w(out.data(), out.size());
  put_param(w, kParamMaxData, params.max_data);
  put_param(w, kParamMaxLaneData, params.max_lane_data);
  out.resize(w.size());
  return out;
}

TransportParams decode_transport_params(const uint8_t* data, size_t size) {
  TransportParams p;
  Reader r(data, size);
  while (!r.empty()) {
    uint64_t id, len;
    const uint8_t* value;
    if (!r.get_varint(id) || !r.get_varint(len) || len > r.remaining() || !r.get_bytes(size_t(len), value))
      break;
    Reader v(value, size_t(len));
    uint64_t x;
    if (id == kParamMaxData && v.get_varint(x)) p.max_data = std::max(x, kMinInitialCredit);
    if (id == kParamMaxLaneData && v.get_varint(x)) p.max_lane_data = std::max(x, kMinInitialCredit);
  }
  return p;
}

}  // namespace peerlink::protocol
