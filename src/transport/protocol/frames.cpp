// Frame codec (docs/PROTOCOL.md §5). Every decoder checks each field before using it and reports the first
// problem; encoders refuse (writer ok() = false) to produce anything the decoder would reject, so a frame
// that was encoded always decodes to the same values.
#include "transport/protocol/frames.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace peerlink::protocol {

namespace {

// The Writer has no explicit "fail" call; a value it cannot encode turns ok() false without writing.
void fail(Writer& w) {
  w.put_varint(~uint64_t{0});
}

size_t truncated_debug_length(std::string_view debug) {
  return std::min(debug.size(), kMaxCloseDebugLength);
}

bool valid_unreliable(const UnreliableFrame& f) {
  return f.lane < kMaxLanes && f.total_length <= kMaxUnreliableMessageSize && f.length > 0 &&
         f.offset <= f.total_length && f.length <= f.total_length - f.offset;
}

// Ranges must be descending, non-empty and separated by at least one missing number; the encoding stores
// differences, so anything else cannot be represented.
bool valid_ack(const AckFrame& f) {
  if (f.range_count == 0 || f.range_count > kMaxAckRanges) return false;
  for (size_t i = 0; i < f.range_count; ++i) {
    const PacketRange& r = f.ranges[i];
    if (r.smallest > r.largest || r.largest > kVarintMax) return false;
    if (i > 0 && (f.ranges[i - 1].smallest < 2 || r.largest > f.ranges[i - 1].smallest - 2)) return false;
  }
  return f.ack_delay_us <= kVarintMax;
}

FrameError decode_padding(Reader& r, Frame& out) {
  size_t n = 0;
  uint8_t b = 0;
  while (r.peek_u8(b) && b == 0) {
    r.skip(1);
    ++n;
  }
  out.padding_length = n;
  return FrameError::kNone;
}

FrameError decode_ack(Reader& r, AckFrame& out) {
  uint64_t largest = 0, additional = 0, first_range = 0;
  if (!r.get_varint(largest) || !r.get_varint(out.ack_delay_us) || !r.get_varint(additional) ||
      !r.get_varint(first_range)) {
    return FrameError::kTruncated;
  }
  if (additional > kMaxAckRanges - 1) return FrameError::kTooManyAckRanges;
  if (first_range > largest) return FrameError::kInvalidAckRanges;
  out.ranges[0] = PacketRange{largest - first_range, largest};
  out.range_count = 1;
  for (uint64_t i = 0; i < additional; ++i) {
    uint64_t gap = 0, length = 0;
    if (!r.get_varint(gap) || !r.get_varint(length)) return FrameError::kTruncated;
    // RFC 9000 §19.3.1: largest = previous smallest - gap - 2; smallest = largest - length.
    uint64_t previous_smallest = out.ranges[out.range_count - 1].smallest;
    if (previous_smallest < 2 || gap > previous_smallest - 2) return FrameError::kInvalidAckRanges;
    uint64_t next_largest = previous_smallest - gap - 2;
    if (length > next_largest) return FrameError::kInvalidAckRanges;
    out.ranges[out.range_count++] = PacketRange{next_largest - length, next_largest};
  }
  return FrameError::kNone;
}

FrameError decode_lane(Reader& r, uint32_t& lane) {
  uint64_t v = 0;
  if (!r.get_varint(v)) return FrameError::kTruncated;
  if (v >= kMaxLanes) return FrameError::kInvalidValue;
  lane = static_cast<uint32_t>(v);
  return FrameError::kNone;
}

FrameError decode_reliable(Reader& r, ReliableFrame& out) {
  if (FrameError e = decode_lane(r, out.lane); e != FrameError::kNone) return e;
  uint64_t length = 0;
  if (!r.get_varint(out.offset) || !r.get_varint(length)) return FrameError::kTruncated;
  // Both are below 2^62, so the sum cannot wrap.
  if (out.offset + length > kMaxStreamOffset) return FrameError::kInvalidValue;
  if (length > r.remaining()) return FrameError::kTruncated;
  out.length = static_cast<size_t>(length);
  r.get_bytes(out.length, out.data);
  return FrameError::kNone;
}

FrameError decode_unreliable(Reader& r, UnreliableFrame& out) {
  if (FrameError e = decode_lane(r, out.lane); e != FrameError::kNone) return e;
  uint64_t length = 0;
  if (!r.get_varint(out.message_id) || !r.get_varint(out.total_length) || !r.get_varint(out.offset) ||
      !r.get_varint(length)) {
    return FrameError::kTruncated;
  }
  if (out.total_length > kMaxUnreliableMessageSize || length == 0 || out.offset > out.total_length ||
      length > out.total_length - out.offset) {
    return FrameError::kInvalidValue;
  }
  if (length > r.remaining()) return FrameError::kTruncated;
  out.length = static_cast<size_t>(length);
  r.get_bytes(out.length, out.data);
  return FrameError::kNone;
}

FrameError decode_close(Reader& r, CloseFrame& out) {
  uint64_t reason = 0, length = 0;
  if (!r.get_varint(reason) || !r.get_varint(length)) return FrameError::kTruncated;
  if (reason > std::numeric_limits<uint32_t>::max() || length > kMaxCloseDebugLength) {
    return FrameError::kInvalidValue;
  }
  const uint8_t* text = nullptr;
  if (!r.get_bytes(static_cast<size_t>(length), text)) return FrameError::kTruncated;
  out.reason = static_cast<uint32_t>(reason);
  out.debug = std::string_view(reinterpret_cast<const char*>(text), static_cast<size_t>(length));
  return FrameError::kNone;
}

}  // namespace

const char* to_string(FrameError e) {
  switch (e) {
    case FrameError::kNone:
      return "no error";
    case FrameError::kTruncated:
      return "frame truncated";
    case FrameError::kUnknownType:
      return "unknown frame type";
    case FrameError::kInvalidValue:
      return "frame field out of range";
    case FrameError::kTooManyAckRanges:
      return "too many ack ranges";
    case FrameError::kInvalidAckRanges:
      return "invalid ack ranges";
  }
  return "unknown frame error";
}

FrameError decode_frame(Reader& r, Frame& out) {
  uint8_t type = 0;
  if (!r.peek_u8(type)) return FrameError::kTruncated;
  if (type == static_cast<uint8_t>(FrameType::kPadding)) {
    out.type = FrameType::kPadding;
    return decode_padding(r, out);
  }
  r.skip(1);
  switch (static_cast<FrameType>(type)) {
    case FrameType::kPadding:  // handled above
      break;
    case FrameType::kPing:
      out.type = FrameType::kPing;
      return FrameError::kNone;
    case FrameType::kAck:
      out.type = FrameType::kAck;
      return decode_ack(r, out.ack);
    case FrameType::kReliable:
      out.type = FrameType::kReliable;
      return decode_reliable(r, out.reliable);
    case FrameType::kUnreliable:
      out.type = FrameType::kUnreliable;
      return decode_unreliable(r, out.unreliable);
    case FrameType::kMaxData:
      out.type = FrameType::kMaxData;
      return r.get_varint(out.max_data.max) ? FrameError::kNone : FrameError::kTruncated;
    case FrameType::kMaxLaneData: {
      out.type = FrameType::kMaxLaneData;
      if (FrameError e = decode_lane(r, out.max_lane_data.lane); e != FrameError::kNone) return e;
      return r.get_varint(out.max_lane_data.max) ? FrameError::kNone : FrameError::kTruncated;
    }
    case FrameType::kClose:
      out.type = FrameType::kClose;
      return decode_close(r, out.close);
    case FrameType::kAckFrequency:
      out.type = FrameType::kAckFrequency;
      if (!r.get_varint(out.ack_frequency.sequence) || !r.get_varint(out.ack_frequency.threshold)) {
        return FrameError::kTruncated;
      }
      if (out.ack_frequency.threshold == 0 || out.ack_frequency.threshold > kMaxAckThreshold) {
        return FrameError::kInvalidValue;
      }
      return FrameError::kNone;
  }
  return FrameError::kUnknownType;
}

void encode_ping(Writer& w) {
  w.put_u8(static_cast<uint8_t>(FrameType::kPing));
}

void encode_padding(Writer& w, size_t n) {
  w.put_zeros(n);
}

void encode_ack(Writer& w, const AckFrame& f) {
  if (!valid_ack(f)) return fail(w);
  w.put_u8(static_cast<uint8_t>(FrameType::kAck));
  w.put_varint(f.ranges[0].largest);
  w.put_varint(f.ack_delay_us);
  w.put_varint(f.range_count - 1);
  w.put_varint(f.ranges[0].largest - f.ranges[0].smallest);
  for (size_t i = 1; i < f.range_count; ++i) {
    w.put_varint(f.ranges[i - 1].smallest - f.ranges[i].largest - 2);
    w.put_varint(f.ranges[i].largest - f.ranges[i].smallest);
  }
}

uint8_t* encode_reliable(Writer& w, uint32_t lane, uint64_t offset, size_t length) {
  if (lane >= kMaxLanes || offset > kMaxStreamOffset || length > kMaxStreamOffset - offset) {
    fail(w);
    return nullptr;
  }
  w.put_u8(static_cast<uint8_t>(FrameType::kReliable));
  w.put_varint(lane);
  w.put_varint(offset);
  w.put_varint(length);
  return w.put_uninit(length);
}

void encode_reliable(Writer& w, uint32_t lane, uint64_t offset, const uint8_t* data, size_t length) {
  uint8_t* payload = encode_reliable(w, lane, offset, length);
  if (payload && length > 0) std::memcpy(payload, data, length);
}

void encode_unreliable(Writer& w, const UnreliableFrame& f) {
  if (!valid_unreliable(f) || f.message_id > kVarintMax) return fail(w);
  w.put_u8(static_cast<uint8_t>(FrameType::kUnreliable));
  w.put_varint(f.lane);
  w.put_varint(f.message_id);
  w.put_varint(f.total_length);
  w.put_varint(f.offset);
  w.put_varint(f.length);
  w.put_bytes(f.data, f.length);
}

void encode_max_data(Writer& w, uint64_t max) {
  if (max > kVarintMax) return fail(w);
  w.put_u8(static_cast<uint8_t>(FrameType::kMaxData));
  w.put_varint(max);
}

void encode_max_lane_data(Writer& w, uint32_t lane, uint64_t max) {
  if (lane >= kMaxLanes || max > kVarintMax) return fail(w);
  w.put_u8(static_cast<uint8_t>(FrameType::kMaxLaneData));
  w.put_varint(lane);
  w.put_varint(max);
}

void encode_close(Writer& w, uint32_t reason, std::string_view debug) {
  size_t n = truncated_debug_length(debug);
  w.put_u8(static_cast<uint8_t>(FrameType::kClose));
  w.put_varint(reason);
  w.put_varint(n);
  w.put_bytes(debug.data(), n);
}

size_t ack_frame_size(const AckFrame& f) {
  if (f.range_count == 0) return 0;
  size_t n = 1 + varint_size(f.ranges[0].largest) + varint_size(f.ack_delay_us) +
             varint_size(f.range_count - 1) + varint_size(f.ranges[0].largest - f.ranges[0].smallest);
  for (size_t i = 1; i < f.range_count && i < kMaxAckRanges; ++i) {
    n += varint_size(f.ranges[i - 1].smallest - f.ranges[i].largest - 2);
    n += varint_size(f.ranges[i].largest - f.ranges[i].smallest);
  }
  return n;
}

size_t reliable_frame_header_size(uint32_t lane, uint64_t offset, size_t length) {
  return 1 + varint_size(lane) + varint_size(offset) + varint_size(length);
}

size_t unreliable_frame_header_size(const UnreliableFrame& f) {
  return 1 + varint_size(f.lane) + varint_size(f.message_id) + varint_size(f.total_length) +
         varint_size(f.offset) + varint_size(f.length);
}

size_t close_frame_size(uint32_t reason, std::string_view debug) {
  size_t n = truncated_debug_length(debug);
  return 1 + varint_size(reason) + varint_size(n) + n;
}

void encode_ack_frequency(Writer& w, uint64_t sequence, uint64_t threshold) {
  if (threshold == 0 || threshold > kMaxAckThreshold || sequence > kVarintMax) return fail(w);
  w.put_u8(static_cast<uint8_t>(FrameType::kAckFrequency));
  w.put_varint(sequence);
  w.put_varint(threshold);
}

}  // namespace peerlink::protocol
