// Decodes frames from arbitrary bytes until an error or the end of the input. Every frame that decodes must
// re-encode (with exactly the size the *_size functions predict) and decode again to the same values; any
// difference aborts, since it means the encoder and decoder disagree about the wire format.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/protocol/frames.hpp"

namespace {

using namespace peerlink::protocol;

// Encodes `f` and returns the exact size the size functions predict (0 where there is none).
size_t encode_frame(Writer& w, const Frame& f) {
  switch (f.type) {
    case FrameType::kPadding:
      encode_padding(w, f.padding_length);
      return f.padding_length;
    case FrameType::kPing:
      encode_ping(w);
      return 1;
    case FrameType::kAck:
      encode_ack(w, f.ack);
      return ack_frame_size(f.ack);
    case FrameType::kReliable:
      encode_reliable(w, f.reliable.lane, f.reliable.offset, f.reliable.data, f.reliable.length);
      return reliable_frame_header_size(f.reliable.lane, f.reliable.offset, f.reliable.length) +
             f.reliable.length;
    case FrameType::kUnreliable:
      encode_unreliable(w, f.unreliable);
      return unreliable_frame_header_size(f.unreliable) + f.unreliable.length;
    case FrameType::kMaxData:
      encode_max_data(w, f.max_data.max);
      return 1 + varint_size(f.max_data.max);
    case FrameType::kMaxLaneData:
      encode_max_lane_data(w, f.max_lane_data.lane, f.max_lane_data.max);
      return 1 + varint_size(f.max_lane_data.lane) + varint_size(f.max_lane_data.max);
    case FrameType::kClose:
      encode_close(w, f.close.reason, f.close.debug);
      return close_frame_size(f.close.reason, f.close.debug);
    case FrameType::kAckFrequency:
      encode_ack_frequency(w, f.ack_frequency.sequence, f.ack_frequency.threshold);
      return 1 + varint_size(f.ack_frequency.sequence) + varint_size(f.ack_frequency.threshold);
  }
  std::abort();
}

void check_same(const Frame& a, const Frame& b) {
  FUZZ_CHECK(a.type == b.type);
  switch (a.type) {
    case FrameType::kPadding:
      FUZZ_CHECK(a.padding_length == b.padding_length);
      break;
    case FrameType::kPing:
      break;
    case FrameType::kAck:
      FUZZ_CHECK(a.ack.ack_delay_us == b.ack.ack_delay_us);
      FUZZ_CHECK(a.ack.range_count == b.ack.range_count);
      for (size_t i = 0; i < a.ack.range_count; ++i) {
        FUZZ_CHECK(a.ack.ranges[i].smallest == b.ack.ranges[i].smallest);
        FUZZ_CHECK(a.ack.ranges[i].largest == b.ack.ranges[i].largest);
        FUZZ_CHECK(a.ack.ranges[i].smallest <= a.ack.ranges[i].largest);
        if (i > 0) FUZZ_CHECK(a.ack.ranges[i].largest + 1 < a.ack.ranges[i - 1].smallest);
      }
      break;
    case FrameType::kReliable:
      FUZZ_CHECK(a.reliable.lane == b.reliable.lane);
      FUZZ_CHECK(a.reliable.offset == b.reliable.offset);
      FUZZ_CHECK(a.reliable.length == b.reliable.length);
      FUZZ_CHECK(same_bytes(a.reliable.data, b.reliable.data, a.reliable.length));
      break;
    case FrameType::kUnreliable:
      FUZZ_CHECK(a.unreliable.lane == b.unreliable.lane);
      FUZZ_CHECK(a.unreliable.message_id == b.unreliable.message_id);
      FUZZ_CHECK(a.unreliable.total_length == b.unreliable.total_length);
      FUZZ_CHECK(a.unreliable.offset == b.unreliable.offset);
      FUZZ_CHECK(a.unreliable.length == b.unreliable.length);
      FUZZ_CHECK(same_bytes(a.unreliable.data, b.unreliable.data, a.unreliable.length));
      break;
    case FrameType::kMaxData:
      FUZZ_CHECK(a.max_data.max == b.max_data.max);
      break;
    case FrameType::kMaxLaneData:
      FUZZ_CHECK(a.max_lane_data.lane == b.max_lane_data.lane);
      FUZZ_CHECK(a.max_lane_data.max == b.max_lane_data.max);
      break;
    case FrameType::kClose:
      FUZZ_CHECK(a.close.reason == b.close.reason);
      FUZZ_CHECK(a.close.debug == b.close.debug);
      break;
    case FrameType::kAckFrequency:
      FUZZ_CHECK(a.ack_frequency.sequence == b.ack_frequency.sequence);
      FUZZ_CHECK(a.ack_frequency.threshold == b.ack_frequency.threshold);
      break;
  }
}

void check_round_trip(const Frame& decoded, size_t max_payload) {
  std::vector<uint8_t> buf(max_payload + 2048);
  Writer w(buf.data(), buf.size());
  size_t predicted = encode_frame(w, decoded);
  FUZZ_CHECK(w.ok());  // anything the decoder accepts, the encoder must be able to write
  FUZZ_CHECK(w.size() == predicted);

  // Decode from an exactly sized copy so ASan catches any read past the re-encoding.
  std::vector<uint8_t> exact(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(w.size()));
  Reader r(exact.data(), exact.size());
  Frame again;
  if (decoded.type == FrameType::kPadding && decoded.padding_length == 0) return;  // nothing was written
  FUZZ_CHECK(decode_frame(r, again) == FrameError::kNone);
  FUZZ_CHECK(r.empty());
  check_same(decoded, again);

  // One byte less of room must make the encoder fail rather than overrun.
  if (w.size() > 0) {
    std::vector<uint8_t> small(w.size() - 1);
    Writer tight(small.data(), small.size());
    encode_frame(tight, decoded);
    FUZZ_CHECK(!tight.ok());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  Frame f;
  while (!r.empty()) {
    const uint8_t* start = r.cursor();
    FrameError e = decode_frame(r, f);
    FUZZ_CHECK(to_string(e) != nullptr);
    if (e != FrameError::kNone) break;
    FUZZ_CHECK(r.cursor() > start);  // every frame consumes input, so the loop ends
    check_round_trip(f, size);
  }
  return 0;
}
