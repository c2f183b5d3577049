#include "transport/protocol/reliable_send_stream.hpp"

#include <algorithm>
#include <cstring>

#include "transport/protocol/buffer.hpp"

namespace peerlink::protocol {

namespace {
// Messages up to this size are packed together into shared chunks.
constexpr size_t kSmallChunk = 16 * 1024;
}  // namespace

void ReliableSendStream::push_message(const uint8_t* data, size_t len) {
  uint8_t header[8];
  Writer w(header, sizeof header);
  w.put_varint(len);
  if (len + w.size() <= kSmallChunk) {
    append(header, w.size());
    append(data, len);
    return;
  }
  // A large message gets a chunk of its own, sized once.
  // (The min() only tells gcc 12's -Warray-bounds at -O3 what the Writer already guarantees.)
  const size_t header_len = std::min(w.size(), sizeof header);
  Chunk c;
  c.start = end_;
  c.bytes.reserve(header_len + len);
  c.bytes.insert(c.bytes.end(), header, header + header_len);
  c.bytes.insert(c.bytes.end(), data, data + len);
  end_ += c.bytes.size();
  chunks_.push_back(std::move(c));
}

void ReliableSendStream::append(const uint8_t* data, size_t len) {
  if (len == 0) return;
  if (chunks_.empty() || chunks_.back().bytes.size() + len > kSmallChunk ||
      chunks_.back().bytes.capacity() > kSmallChunk) {
    Chunk c;
    c.start = end_;
    c.bytes.reserve(kSmallChunk);
    chunks_.push_back(std::move(c));
  }
  auto& b = chunks_.back().bytes;
  b.insert(b.end(), data, data + len);
  end_ += len;
}

size_t ReliableSendStream::chunk_index(uint64_t offset) const {
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
  return lo;
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

void ReliableSendStream::copy_out(uint64_t offset, size_t len, uint8_t* out) const {
  size_t i = chunk_index(offset);
  while (len > 0 && i < chunks_.size()) {
    const Chunk& c = chunks_[i];
    size_t in_chunk = size_t(offset - c.start);
    size_t n = std::min(len, c.bytes.size() - in_chunk);
    std::memcpy(out, c.bytes.data() + in_chunk, n);
    out += n;
    offset += n;
    len -= n;
    ++i;
  }
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
    uint64_t chunk_end = c.start + c.bytes.size();
    if (chunk_end > acked_prefix_) break;
    chunks_.pop_front();
  }
}

}  // namespace peerlink::protocol
