// Runs every packet decoder on arbitrary bytes. Each successful decode must agree with peek_packet_kind and
// re-encode into bytes that decode to the same values; any difference aborts. The first 12 bytes also drive
// packet number reconstruction, whose result must keep the truncated bits and stay near the expected number.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/protocol/packet.hpp"

namespace {

using namespace peerlink::protocol;

bool same_cookie(const uint8_t* a, const uint8_t* b) {
  if (!a || !b) return a == b;
  return std::memcmp(a, b, kCookieSize) == 0;
}

// Re-encodes with `encode` into a roomy buffer and returns exactly the written bytes.
template <typename Packet>
std::vector<uint8_t> reencode(size_t (*encode)(const Packet&, uint8_t*, size_t), const Packet& p) {
  std::vector<uint8_t> buf(4096);
  size_t n = encode(p, buf.data(), buf.size());
  FUZZ_CHECK(n > 0);  // anything the decoder accepts, the encoder must be able to write
  // A buffer one byte short must make the encoder refuse, not overrun.
  std::vector<uint8_t> small(n - 1);
  FUZZ_CHECK(encode(p, small.data(), small.size()) == 0);
  return std::vector<uint8_t>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
}

void check_initiation(const uint8_t* data, size_t size) {
  InitiationPacket a, b;
  if (!decode_initiation(data, size, a)) return;
  FUZZ_CHECK(peek_packet_kind(data, size) == PacketKind::kInitiation);
  std::vector<uint8_t> bytes = reencode(encode_initiation, a);
  FUZZ_CHECK(bytes.size() == kMinInitiationSize);
  FUZZ_CHECK(decode_initiation(bytes.data(), bytes.size(), b));
  FUZZ_CHECK(a.version == b.version && a.suite == b.suite && a.pattern == b.pattern &&
             a.sender_id == b.sender_id);
  FUZZ_CHECK(same_cookie(a.cookie, b.cookie));
  FUZZ_CHECK(a.noise_length == b.noise_length && same_bytes(a.noise, b.noise, a.noise_length));
}

void check_response(const uint8_t* data, size_t size) {
  ResponsePacket a, b;
  if (!decode_response(data, size, a)) return;
  FUZZ_CHECK(peek_packet_kind(data, size) == PacketKind::kResponse);
  std::vector<uint8_t> bytes = reencode(encode_response, a);
  FUZZ_CHECK(bytes.size() == size && std::memcmp(bytes.data(), data, size) == 0);  // the layout is exact
  FUZZ_CHECK(decode_response(bytes.data(), bytes.size(), b));
  FUZZ_CHECK(a.version == b.version && a.receiver_id == b.receiver_id && a.sender_id == b.sender_id);
  FUZZ_CHECK(a.noise_length == b.noise_length && same_bytes(a.noise, b.noise, a.noise_length));
}

void check_finish(const uint8_t* data, size_t size) {
  FinishPacket a, b;
  if (!decode_finish(data, size, a)) return;
  FUZZ_CHECK(peek_packet_kind(data, size) == PacketKind::kFinish);
  std::vector<uint8_t> bytes = reencode(encode_finish, a);
  FUZZ_CHECK(bytes.size() == size && std::memcmp(bytes.data(), data, size) == 0);
  FUZZ_CHECK(decode_finish(bytes.data(), bytes.size(), b));
  FUZZ_CHECK(a.receiver_id == b.receiver_id && a.sender_id == b.sender_id);
  FUZZ_CHECK(a.noise_length == b.noise_length && same_bytes(a.noise, b.noise, a.noise_length));
}

void check_retry(const uint8_t* data, size_t size) {
  RetryPacket a, b;
  if (!decode_retry(data, size, a)) return;
  FUZZ_CHECK(peek_packet_kind(data, size) == PacketKind::kRetry);
  std::vector<uint8_t> bytes = reencode(encode_retry, a);
  FUZZ_CHECK(bytes.size() == size && std::memcmp(bytes.data(), data, size) == 0);
  FUZZ_CHECK(decode_retry(bytes.data(), bytes.size(), b));
  FUZZ_CHECK(a.version == b.version && a.receiver_id == b.receiver_id && same_cookie(a.cookie, b.cookie));
}

void check_reject(const uint8_t* data, size_t size) {
  RejectPacket a, b;
  if (!decode_reject(data, size, a)) return;
  FUZZ_CHECK(peek_packet_kind(data, size) == PacketKind::kReject);
  std::vector<uint8_t> bytes = reencode(encode_reject, a);
  FUZZ_CHECK(bytes.size() == size && std::memcmp(bytes.data(), data, size) == 0);
  FUZZ_CHECK(decode_reject(bytes.data(), bytes.size(), b));
  FUZZ_CHECK(a.version == b.version && a.receiver_id == b.receiver_id && a.reason == b.reason);
}

void check_data_header(const uint8_t* data, size_t size) {
  DataHeader a, b;
  if (!decode_data_header(data, size, a)) return;
  FUZZ_CHECK(peek_packet_kind(data, size) == PacketKind::kData);
  std::vector<uint8_t> bytes(kDataHeaderSize + kAeadTagSize);
  encode_data_header(a, bytes.data());
  FUZZ_CHECK(std::memcmp(bytes.data(), data, kDataHeaderSize) == 0);
  FUZZ_CHECK(decode_data_header(bytes.data(), bytes.size(), b));
  FUZZ_CHECK(a.key_phase == b.key_phase && a.receiver_id == b.receiver_id &&
             a.truncated_pn == b.truncated_pn);
}

void check_packet_number(const uint8_t* data, size_t size) {
  if (size < 12) return;
  uint64_t largest = 0;
  uint32_t truncated = 0;
  Reader r(data, size);
  r.get_u64(largest);
  r.get_u32(truncated);
  largest &= kVarintMax;
  uint64_t pn = decode_packet_number(largest, truncated);
  FUZZ_CHECK(uint32_t(pn) == truncated);
  constexpr uint64_t kHalfWindow = uint64_t{1} << 31;
  const uint64_t expected = largest + 1;
  // Away from both ends of the packet number space, the result is the one closest to `expected`.
  if (expected > kHalfWindow && expected < kVarintMax - 2 * (uint64_t{1} << 32)) {
    FUZZ_CHECK(pn > expected - kHalfWindow && pn <= expected + kHalfWindow);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PacketKind kind = peek_packet_kind(data, size);
  FUZZ_CHECK(size > 0 || kind == PacketKind::kInvalid);
  check_initiation(data, size);
  check_response(data, size);
  check_finish(data, size);
  check_retry(data, size);
  check_reject(data, size);
  check_data_header(data, size);
  check_packet_number(data, size);
  return 0;
}
