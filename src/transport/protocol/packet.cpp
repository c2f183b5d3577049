// Packet header codec (docs/PROTOCOL.md §3, §6). Handshake packets have fixed layouts that must fill the
// datagram exactly (except Initiation, which is padded); a data header is followed by the AEAD ciphertext.
#include "transport/protocol/packet.hpp"

#include <algorithm>

namespace peerlink::protocol {

namespace {

constexpr uint8_t kDataFirstByte = 0x40;
constexpr uint8_t kDataKeyPhaseBit = 0x01;
constexpr uint8_t kDataFormMask = 0xc0;
constexpr uint8_t kDataReservedBits = 0x3e;

// Sizes of the two handshake packets without a variable-length part.
constexpr size_t kRetrySize = 1 + 1 + 4 + kCookieSize;
constexpr size_t kRejectSize = 1 + 1 + 4 + 2;

uint8_t kind_byte(PacketKind k) {
  return static_cast<uint8_t>(k);
}

bool known_suite(uint8_t v) {
  return v == static_cast<uint8_t>(CipherSuiteId::kChaChaPoly) ||
         v == static_cast<uint8_t>(CipherSuiteId::kAesGcm);
}

bool known_pattern(uint8_t v) {
  return v == static_cast<uint8_t>(HandshakePattern::kIK) || v == static_cast<uint8_t>(HandshakePattern::kXX);
}

bool expect_byte(Reader& r, uint8_t expected) {
  uint8_t b = 0;
  return r.get_u8(b) && b == expected;
}

// Reads a u16 length and the noise message it announces.
bool get_noise(Reader& r, const uint8_t*& noise, size_t& noise_length) {
  uint16_t n = 0;
  if (!r.get_u16(n) || n > kMaxNoiseMessageSize) return false;
  noise_length = n;
  return r.get_bytes(n, noise);
}

size_t finish_writer(const Writer& w) {
  return w.ok() ? w.size() : 0;
}

}  // namespace

PacketKind peek_packet_kind(const uint8_t* data, size_t len) {
  if (len == 0) return PacketKind::kInvalid;
  uint8_t b = data[0];
  if (b >= kind_byte(PacketKind::kInitiation) && b <= kind_byte(PacketKind::kReject)) {
    return static_cast<PacketKind>(b);
  }
  if ((b & kDataFormMask) == kDataFirstByte) return PacketKind::kData;
  return PacketKind::kInvalid;
}

bool decode_initiation(const uint8_t* data, size_t len, InitiationPacket& out) {
  if (len < kMinInitiationSize) return false;
  Reader r(data, len);
  uint8_t suite = 0, pattern = 0, cookie_length = 0;
  if (!expect_byte(r, kind_byte(PacketKind::kInitiation)) || !r.get_u8(out.version) || !r.get_u8(suite) ||
      !r.get_u8(pattern) || !r.get_u32(out.sender_id) || !r.get_u8(cookie_length)) {
    return false;
  }
  if (!known_suite(suite) || !known_pattern(pattern)) return false;
  out.suite = static_cast<CipherSuiteId>(suite);
  out.pattern = static_cast<HandshakePattern>(pattern);
  if (cookie_length == 0) {
    out.cookie = nullptr;
  } else if (cookie_length != kCookieSize || !r.get_bytes(kCookieSize, out.cookie)) {
    return false;
  }
  // The rest of the datagram is padding; its content is ignored (senders write zeros).
  return get_noise(r, out.noise, out.noise_length);
}

bool decode_response(const uint8_t* data, size_t len, ResponsePacket& out) {
  Reader r(data, len);
  if (!expect_byte(r, kind_byte(PacketKind::kResponse)) || !r.get_u8(out.version) ||
      out.version != kProtocolVersion || !r.get_u32(out.receiver_id) || !r.get_u32(out.sender_id) ||
      !get_noise(r, out.noise, out.noise_length)) {
    return false;
  }
  return r.empty();
}

bool decode_finish(const uint8_t* data, size_t len, FinishPacket& out) {
  Reader r(data, len);
  if (!expect_byte(r, kind_byte(PacketKind::kFinish)) || !r.get_u32(out.receiver_id) ||
      !r.get_u32(out.sender_id) || !get_noise(r, out.noise, out.noise_length)) {
    return false;
  }
  return r.empty();
}

bool decode_retry(const uint8_t* data, size_t len, RetryPacket& out) {
  if (len != kRetrySize) return false;
  Reader r(data, len);
  return expect_byte(r, kind_byte(PacketKind::kRetry)) && r.get_u8(out.version) &&
         out.version == kProtocolVersion && r.get_u32(out.receiver_id) &&
         r.get_bytes(kCookieSize, out.cookie);
}

bool decode_reject(const uint8_t* data, size_t len, RejectPacket& out) {
  if (len != kRejectSize) return false;
  Reader r(data, len);
  return expect_byte(r, kind_byte(PacketKind::kReject)) && r.get_u8(out.version) &&
         out.version == kProtocolVersion && r.get_u32(out.receiver_id) && r.get_u16(out.reason);
}

bool decode_data_header(const uint8_t* data, size_t len, DataHeader& out) {
  if (len < kDataHeaderSize + kAeadTagSize) return false;
  Reader r(data, len);
  uint8_t first = 0;
  r.get_u8(first);
  if ((first & kDataFormMask) != kDataFirstByte || (first & kDataReservedBits) != 0) return false;
  out.key_phase = (first & kDataKeyPhaseBit) != 0;
  r.get_u32(out.receiver_id);
  r.get_u32(out.truncated_pn);
  return true;
}

size_t encode_initiation(const InitiationPacket& p, uint8_t* out, size_t cap) {
  uint8_t suite = static_cast<uint8_t>(p.suite), pattern = static_cast<uint8_t>(p.pattern);
  if (!known_suite(suite) || !known_pattern(pattern) || p.noise_length > kMaxNoiseMessageSize) return 0;
  Writer w(out, cap);
  w.put_u8(kind_byte(PacketKind::kInitiation));
  w.put_u8(p.version);
  w.put_u8(suite);
  w.put_u8(pattern);
  w.put_u32(p.sender_id);
  w.put_u8(p.cookie ? uint8_t{kCookieSize} : uint8_t{0});
  if (p.cookie) w.put_bytes(p.cookie, kCookieSize);
  w.put_u16(static_cast<uint16_t>(p.noise_length));
  w.put_bytes(p.noise, p.noise_length);
  if (w.ok() && w.size() < kMinInitiationSize) w.put_zeros(kMinInitiationSize - w.size());
  return finish_writer(w);
}

size_t encode_response(const ResponsePacket& p, uint8_t* out, size_t cap) {
  if (p.noise_length > kMaxNoiseMessageSize) return 0;
  Writer w(out, cap);
  w.put_u8(kind_byte(PacketKind::kResponse));
  w.put_u8(p.version);
  w.put_u32(p.receiver_id);
  w.put_u32(p.sender_id);
  w.put_u16(static_cast<uint16_t>(p.noise_length));
  w.put_bytes(p.noise, p.noise_length);
  return finish_writer(w);
}

size_t encode_finish(const FinishPacket& p, uint8_t* out, size_t cap) {
  if (p.noise_length > kMaxNoiseMessageSize) return 0;
  Writer w(out, cap);
  w.put_u8(kind_byte(PacketKind::kFinish));
  w.put_u32(p.receiver_id);
  w.put_u32(p.sender_id);
  w.put_u16(static_cast<uint16_t>(p.noise_length));
  w.put_bytes(p.noise, p.noise_length);
  return finish_writer(w);
}

size_t encode_retry(const RetryPacket& p, uint8_t* out, size_t cap) {
  if (!p.cookie) return 0;
  Writer w(out, cap);
  w.put_u8(kind_byte(PacketKind::kRetry));
  w.put_u8(p.version);
  w.put_u32(p.receiver_id);
  w.put_bytes(p.cookie, kCookieSize);
  return finish_writer(w);
}

size_t encode_reject(const RejectPacket& p, uint8_t* out, size_t cap) {
  Writer w(out, cap);
  w.put_u8(kind_byte(PacketKind::kReject));
  w.put_u8(p.version);
  w.put_u32(p.receiver_id);
  w.put_u16(p.reason);
  return finish_writer(w);
}

void encode_data_header(const DataHeader& h, uint8_t* out) {
  Writer w(out, kDataHeaderSize);
  w.put_u8(uint8_t(kDataFirstByte | (h.key_phase ? kDataKeyPhaseBit : 0)));
  w.put_u32(h.receiver_id);
  w.put_u32(h.truncated_pn);
}

uint64_t decode_packet_number(uint64_t largest_received, uint32_t truncated) {
  // RFC 9000 Appendix A.3 with pn_nbits = 32.
  constexpr uint64_t kWindow = uint64_t{1} << 32;
  constexpr uint64_t kHalfWindow = kWindow / 2;
  constexpr uint64_t kMask = kWindow - 1;
  constexpr uint64_t kPacketNumberLimit = uint64_t{1} << 62;
  // Packet numbers stay below 2^62; clamping a nonsensical largest keeps every sum below from wrapping.
  const uint64_t expected = std::min(largest_received, kVarintMax) + 1;
  const uint64_t candidate = (expected & ~kMask) | truncated;
  if (candidate + kHalfWindow <= expected && candidate <= kPacketNumberLimit - kWindow)
    return candidate + kWindow;
  if (candidate > expected + kHalfWindow && candidate >= kWindow) return candidate - kWindow;
  return candidate;
}

}  // namespace peerlink::protocol
