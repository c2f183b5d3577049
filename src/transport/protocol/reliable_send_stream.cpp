#include "transport/protocol/reliable_send_stream.hpp"

#include <algorithm>
#include <cstring>

#include "transport/protocol/buffer.hpp"

namespace peerlink::protocol {

namespace {
// Messages up to this size are packed together into shared chunks.
constexpr size_t kSmallChunk = 16 * 1024;

// The record's length prefix: a varint of at most 8 bytes for any message that fits in memory.
size_t record_header(size_t len, uint8_t (&header)[8]) {
  Writer w(header, sizeof header);
  w.put_varint(len);
  // (The min() only tells gcc 12's -Warray-bounds at -O3 what the Writer already guarantees.)
  return std::min(w.size(), sizeof header);
}

}  // namespace

void ReliableSendStream::push_message(const uint8_t* data, size_t len) {
  uint8_t header[8];
  const size_t header_len = record_header(len, header);
  if (len + header_len <= kSmallChunk) {
    append(header, header_len);
    append(data, len);
    return;
  }
  push_large(std::vector<uint8_t>(data, data + len), header, header_len);
}

void ReliableSendStream::push_message(std::vector<uint8_t>&& message) {
  const size_t len = message.size();
  uint8_t header[8];
  const size_t header_len = record_header(len, header);
  if (len + header_len <= kSmallChunk) {
    push_message(message.data(), len);
    message.clear();
    return;
  }
  push_large(std::move(message), header, header_len);
}

// A large record gets a chunk of its own: no copy beyond the one the caller made, if any.
void ReliableSendStream::push_large(std::vector<uint8_t>&& message, const uint8_t* header,
                                    size_t header_len) {
  Chunk c{end_, std::move(message), uint8_t(header_len), {}};
  std::memcpy(c.prefix, header, header_len);
  end_ += c.size();
  chunks_.push_back(std::move(c));
}

void ReliableSendStream::append(const uint8_t* data, size_t len) {
  if (len == 0) return;
  if (chunks_.empty() || chunks_.back().prefix_len != 0 || chunks_.back().bytes.size() + len > kSmallChunk) {
    Chunk c{end_, {}, 0, {}};
    c.bytes.reserve(kSmallChunk);
    chunks_.push_back(std::move(c));
  }
  auto& b = chunks_.back().bytes;
  b.insert(b.end(), data, data + len);
  end_ += len;
}

size_t ReliableSendStream::chunk_index(uint64_t offset) const {
  // Segments mostly go out in stream order: the chunk of the last lookup or the one after it holds offset.
  for (size_t i = chunk_hint_; i < chunks_.size() && i <= chunk_hint_ + 1; ++i) {
    const Chunk& c = chunks_[i];
    if (c.start <= offset && offset < c.start + c.size()) return chunk_hint_ = i;
  }
  // Chunks are contiguous and sorted by start: binary search for the last chunk starting at or before offset.
  size_t lo = 0, hi = chunks_.size();
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (chunks_[mid].start <= offset) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return chunk_hint_ = lo;
}

bool ReliableSendStream::next_segment(size_t max_len, uint64_t new_data_limit, uint64_t& offset,
                                      size_t& len) const {
  if (max_len == 0) return false;
  for (const auto& [start, stop] : retransmit_) {
    // Skip bytes acknowledged after they were declared lost (a spurious loss).
    uint64_t s = std::max(start, acked_prefix_);
    while (s < stop) {
      auto it = acked_.ranges().upper_bound(s);
      if (it != acked_.ranges().begin()) {
        auto prev = std::prev(it);
        if (prev->second > s) {
          s = prev->second;
          continue;
        }
      }
      uint64_t e = stop;
      if (it != acked_.ranges().end() && it->first < e) e = it->first;
      offset = s;
      len = size_t(std::min<uint64_t>(e - s, max_len));
      return true;
    }
  }
  uint64_t limit = std::min(end_, new_data_limit);
  if (next_ >= limit) return false;
  offset = next_;
  len = size_t(std::min<uint64_t>(limit - next_, max_len));
  return true;
}

template <typename Piece>
void ReliableSendStream::for_each_piece(uint64_t offset, size_t len, Piece&& piece) const {
  size_t i = chunk_index(offset);
  while (len > 0 && i < chunks_.size()) {
    const Chunk& c = chunks_[i];
    size_t in_chunk = size_t(offset - c.start);
    size_t n;
    if (in_chunk < c.prefix_len) {
      n = std::min(len, c.prefix_len - in_chunk);
      piece(c.prefix + in_chunk, n);
    } else {
      n = std::min(len, c.size() - in_chunk);
      piece(c.bytes.data() + (in_chunk - c.prefix_len), n);
    }
    offset += n;
    len -= n;
    if (offset == c.start + c.size()) ++i;  // else the prefix is done and the message follows
  }
}

void ReliableSendStream::copy_out(uint64_t offset, size_t len, uint8_t* out) const {
  for_each_piece(offset, len, [&](const uint8_t* data, size_t n) {
    std::memcpy(out, data, n);
    out += n;
  });
}

void ReliableSendStream::gather_out(uint64_t offset, size_t len, uint8_t* out, PacketSources& sources) const {
  for_each_piece(offset, len, [&](const uint8_t* data, size_t n) {
    if (n >= PacketSources::kMinRun && sources.count < PacketSources::kMax) {
      sources.items[sources.count++] = {size_t(out - sources.payload), data, n};
    } else {
      std::memcpy(out, data, n);
    }
    out += n;
  });
}

void ReliableSendStream::on_sent(uint64_t offset, size_t len) {
  uint64_t stop = offset + len;
  if (!retransmit_.empty()) retransmit_.erase(offset, stop);
  if (stop > next_) next_ = stop;
}

void ReliableSendStream::on_acked(uint64_t offset, size_t len) {
  uint64_t stop = offset + len;
  if (stop <= acked_prefix_) return;
  if (offset <= acked_prefix_) {
    acked_prefix_ = stop;
    // Absorb ranges that now touch the prefix.
    while (!acked_.empty() && acked_.begin()->first <= acked_prefix_) {
      acked_prefix_ = std::max(acked_prefix_, acked_.begin()->second);
      acked_.erase(acked_.begin()->first, acked_.begin()->second);
    }
    if (!retransmit_.empty()) retransmit_.erase_below(acked_prefix_);
    release_acked();
  } else {
    acked_.insert(offset, stop);
    // Declared lost, then acknowledged (a spurious loss): nothing to resend. Left in retransmit_, it kept
    // has_retransmit() true with nothing to send, and the packet builder, taking this lane first, sent
    // nothing of the other lanes until the gap before it was acknowledged.
    if (!retransmit_.empty()) retransmit_.erase(offset, stop);
  }
}

void ReliableSendStream::on_lost(uint64_t offset, size_t len) {
  uint64_t stop = offset + len;
  if (stop <= acked_prefix_) return;
  offset = std::max(offset, acked_prefix_);
  if (acked_.contains(offset, stop)) return;
  retransmit_.insert(offset, stop);
}

void ReliableSendStream::release_acked() {
  while (!chunks_.empty()) {
    const Chunk& c = chunks_.front();
    uint64_t chunk_end = c.start + c.size();
    if (chunk_end > acked_prefix_) break;
    chunks_.pop_front();
    if (chunk_hint_ > 0) --chunk_hint_;
  }
}

}  // namespace peerlink::protocol
