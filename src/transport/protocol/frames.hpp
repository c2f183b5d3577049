// Frames: the units inside an encrypted data packet (docs/PROTOCOL.md §5).
//
// One encoder and one decoder per frame type. Decoders never read past the input, never allocate, and point
// into the input for payload bytes (valid while the packet buffer lives).
//
//   Reader r(plaintext, len);
//   Frame f;
//   while (!r.empty()) {
//     if (FrameError e = decode_frame(r, f); e != FrameError::kNone) return e;  // the packet is discarded
//     switch (f.type) { ... }
//   }
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "transport/protocol/buffer.hpp"

namespace peerlink::protocol {

enum class FrameType : uint8_t {
  kPadding = 0x00,      // one zero byte; runs of padding are consumed as one frame
  kPing = 0x01,         // ack-eliciting, no content
  kAck = 0x02,          // largest, ack_delay, range_count, first_range, (gap, length)*
  kReliable = 0x03,     // lane, offset, length, data: bytes of a lane's reliable stream
  kUnreliable = 0x04,   // lane, message_id, total_length, offset, length, data: a whole or fragmented message
  kMaxData = 0x05,      // connection-wide limit on reliable stream bytes
  kMaxLaneData = 0x06,  // per-lane limit on reliable stream bytes
  kClose = 0x07,        // end reason, debug text
  kAckFrequency = 0x08,  // sequence, ack-eliciting threshold: how often the sender wants acknowledgements
};

inline constexpr size_t kMaxAckRanges = 64;  // a decoder rejects more
inline constexpr uint32_t kMaxLanes = 256;   // lane numbers are below this
inline constexpr size_t kMaxCloseDebugLength = 256;
inline constexpr uint64_t kMaxStreamOffset = kVarintMax;
inline constexpr uint64_t kMaxUnreliableMessageSize = 64 * 1024;  // total_length of an unreliable message

// Inclusive range of packet numbers.
// Deliberately without member initialisers: a Frame (and its 64 ranges) is declared per packet on the hot
// path, and only the first range_count ranges are ever read.
struct PacketRange {
  uint64_t smallest;
  uint64_t largest;
};

struct AckFrame {
  uint64_t ack_delay_us = 0;
  // Ranges in descending order, disjoint and separated by at least one missing number;
  // ranges[0].largest is the largest acknowledged packet number.
  std::array<PacketRange, kMaxAckRanges> ranges;
  size_t range_count = 0;
};

struct ReliableFrame {
  uint32_t lane = 0;
  uint64_t offset = 0;
  const uint8_t* data = nullptr;
  size_t length = 0;
};

struct UnreliableFrame {
  uint32_t lane = 0;
  uint64_t message_id = 0;
  uint64_t total_length = 0;  // of the whole message
  uint64_t offset = 0;        // of this fragment within the message
  const uint8_t* data = nullptr;
  size_t length = 0;
};

struct MaxDataFrame {
  uint64_t max = 0;
};

struct MaxLaneDataFrame {
  uint32_t lane = 0;
  uint64_t max = 0;
};

struct AckFrequencyFrame {
  uint64_t sequence = 0;   // newer requests have larger numbers; older ones are ignored
  uint64_t threshold = 2;  // acknowledge after this many ack-eliciting packets (1..kMaxAckThreshold)
};

inline constexpr uint64_t kMaxAckThreshold = 64;

struct CloseFrame {
  uint32_t reason = 0;
  std::string_view debug;  // at most kMaxCloseDebugLength bytes
};

// Decoded frame: `type` says which member is valid. A plain struct rather than a variant keeps decoding
// allocation-free and cheap on the hot path.
struct Frame {
  FrameType type = FrameType::kPadding;
  size_t padding_length = 0;
  AckFrame ack;
  ReliableFrame reliable;
  UnreliableFrame unreliable;
  MaxDataFrame max_data;
  MaxLaneDataFrame max_lane_data;
  AckFrequencyFrame ack_frequency;
  CloseFrame close;
};

enum class FrameError : uint8_t {
  kNone = 0,
  kTruncated,         // input ended inside the frame
  kUnknownType,       // type byte not in FrameType
  kInvalidValue,      // a field out of its range (lane >= kMaxLanes, offset+length > kMaxStreamOffset, ...)
  kTooManyAckRanges,  // more than kMaxAckRanges ranges
  kInvalidAckRanges,  // ranges underflow below zero or a first range larger than the largest
};

const char* to_string(FrameError e);

// Decodes one frame at the reader's position and advances past it. On error the reader's position is
// unspecified and the packet must be dropped.
FrameError decode_frame(Reader& r, Frame& out);

// Encoders append to the writer; on lack of room the writer's ok() turns false (callers size frames first
// with the *_size functions below so this does not happen on the hot path).
void encode_ping(Writer& w);
void encode_padding(Writer& w, size_t n);
void encode_ack(Writer& w, const AckFrame& f);
// RELIABLE: writes the frame's fields and reserves its length payload bytes, returning where they go (the
// sender copies them there straight from its send buffer); nullptr, with the writer failed, on an invalid
// field or too little room. The second form copies the payload from data.
uint8_t* encode_reliable(Writer& w, uint32_t lane, uint64_t offset, size_t length);
void encode_reliable(Writer& w, uint32_t lane, uint64_t offset, const uint8_t* data, size_t length);
void encode_unreliable(Writer& w, const UnreliableFrame& f);
void encode_max_data(Writer& w, uint64_t max);
void encode_max_lane_data(Writer& w, uint32_t lane, uint64_t max);
void encode_close(Writer& w, uint32_t reason, std::string_view debug);  // debug truncated to the limit
void encode_ack_frequency(Writer& w, uint64_t sequence, uint64_t threshold);

// Exact encoded sizes.
size_t ack_frame_size(const AckFrame& f);
size_t reliable_frame_header_size(uint32_t lane, uint64_t offset, size_t length);
size_t unreliable_frame_header_size(const UnreliableFrame& f);  // without data
size_t close_frame_size(uint32_t reason, std::string_view debug);

}  // namespace peerlink::protocol
