// Bounds-checked cursors over byte buffers, used by every encoder and decoder.
//
//   Writer w(buf, sizeof buf);
//   w.put_u8(0x40); w.put_varint(lane);
//   if (!w.ok()) return;  // ran out of room; nothing past the end was written
//
//   Reader r(data, len);
//   uint64_t v; if (!r.get_varint(v)) return Error::Truncated;
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace peerlink::protocol {

// QUIC-style variable-length integers (RFC 9000 §16): 1, 2, 4 or 8 bytes, values below 2^62.
inline constexpr uint64_t kVarintMax = (uint64_t{1} << 62) - 1;

constexpr size_t varint_size(uint64_t v) {
  return v < (1u << 6) ? 1 : v < (1u << 14) ? 2 : v < (uint64_t{1} << 30) ? 4 : 8;
}

class Writer {
 public:
  Writer(uint8_t* data, size_t capacity) : begin_(data), p_(data), end_(data + capacity) {}

  bool ok() const { return ok_; }
  size_t size() const { return static_cast<size_t>(p_ - begin_); }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  uint8_t* cursor() { return p_; }

  void put_u8(uint8_t v) {
    if (!reserve(1)) return;
    *p_++ = v;
  }
  void put_u16(uint16_t v) {
    if (!reserve(2)) return;
    p_[0] = uint8_t(v >> 8);
    p_[1] = uint8_t(v);
    p_ += 2;
  }
  void put_u32(uint32_t v) {
    if (!reserve(4)) return;
    for (int i = 0; i < 4; ++i)
      p_[i] = uint8_t(v >> (24 - 8 * i));
    p_ += 4;
  }
  void put_u64(uint64_t v) {
    if (!reserve(8)) return;
    for (int i = 0; i < 8; ++i)
      p_[i] = uint8_t(v >> (56 - 8 * i));
    p_ += 8;
  }
  // Values above kVarintMax cannot be encoded: the writer fails instead.
  void put_varint(uint64_t v) {
    if (v > kVarintMax) {
      ok_ = false;
      return;
    }
    size_t n = varint_size(v);
    if (!reserve(n)) return;
    uint8_t prefix = n == 1 ? 0x00 : n == 2 ? 0x40 : n == 4 ? 0x80 : 0xc0;
    for (size_t i = 0; i < n; ++i)
      p_[i] = uint8_t(v >> (8 * (n - 1 - i)));
    p_[0] |= prefix;
    p_ += n;
  }
  void put_bytes(const void* data, size_t n) {
    if (!reserve(n)) return;
    if (n) std::memcpy(p_, data, n);
    p_ += n;
  }
  // Advances over n bytes the caller fills in itself; null if there is no room.
  uint8_t* put_uninit(size_t n) {
    if (!reserve(n)) return nullptr;
    uint8_t* at = p_;
    p_ += n;
    return at;
  }
  void put_zeros(size_t n) {
    if (!reserve(n)) return;
    std::memset(p_, 0, n);
    p_ += n;
  }

 private:
  bool reserve(size_t n) {
    if (!ok_ || remaining() < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  uint8_t* begin_;
  uint8_t* p_;
  uint8_t* end_;
  bool ok_ = true;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t len) : p_(data), end_(data + len) {}

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }
  const uint8_t* cursor() const { return p_; }

  bool get_u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = *p_++;
    return true;
  }
  bool peek_u8(uint8_t& v) const {
    if (remaining() < 1) return false;
    v = *p_;
    return true;
  }
  bool get_u16(uint16_t& v) {
    if (remaining() < 2) return false;
    v = uint16_t(p_[0] << 8 | p_[1]);
    p_ += 2;
    return true;
  }
  bool get_u32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i)
      v = v << 8 | p_[i];
    p_ += 4;
    return true;
  }
  bool get_u64(uint64_t& v) {
    if (remaining() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
      v = v << 8 | p_[i];
    p_ += 8;
    return true;
  }
  bool get_varint(uint64_t& v) {
    if (remaining() < 1) return false;
    size_t n = size_t{1} << (p_[0] >> 6);
    if (remaining() < n) return false;
    v = p_[0] & 0x3f;
    for (size_t i = 1; i < n; ++i)
      v = v << 8 | p_[i];
    p_ += n;
    return true;
  }
  // Points `out` at the next n bytes (no copy) and advances.
  bool get_bytes(size_t n, const uint8_t*& out) {
    if (remaining() < n) return false;
    out = p_;
    p_ += n;
    return true;
  }
  bool skip(size_t n) {
    if (remaining() < n) return false;
    p_ += n;
    return true;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace peerlink::protocol
