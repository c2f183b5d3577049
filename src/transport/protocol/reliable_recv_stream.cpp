#include "transport/protocol/reliable_recv_stream.hpp"

#include <algorithm>

namespace peerlink::protocol {

namespace {
// Large messages grow their buffer as bytes arrive instead of trusting the announced length up front.
constexpr size_t kInitialReserve = 4u << 20;
}  // namespace

ReliableRecvStream::Result ReliableRecvStream::on_data(uint64_t offset, const uint8_t* data, size_t len,
                                                       uint64_t max_offset, size_t max_message,
                                                       const DeliverFn& deliver) {
  uint64_t stop = offset + len;
  if (stop > max_offset) return Result::kFlowControlViolation;
  highest_ = std::max(highest_, stop);
  if (stop <= consumed_) return Result::kOk;  // duplicate
  if (offset > consumed_) return hold(offset, data, len);
  size_t skip = size_t(consumed_ - offset);
  Result r = feed(data + skip, len - skip, max_message, deliver);
  if (r != Result::kOk) return r;
  // Drain buffered segments that have become contiguous.
  while (!out_of_order_.empty()) {
    auto it = out_of_order_.begin();
    if (it->first > consumed_) break;
    std::vector<uint8_t> seg = std::move(it->second);
    uint64_t seg_start = it->first;
    out_of_order_.erase(it);
    ooo_bytes_ -= seg.size();
    uint64_t seg_end = seg_start + seg.size();
    if (seg_end <= consumed_) continue;
    size_t s = size_t(consumed_ - seg_start);
    r = feed(seg.data() + s, seg.size() - s, max_message, deliver);
    if (r != Result::kOk) return r;
  }
  return Result::kOk;
}

ReliableRecvStream::Result ReliableRecvStream::hold(uint64_t offset, const uint8_t* data, size_t len) {
  const uint64_t stop = offset + len;
  uint64_t at = offset;
  auto next = out_of_order_.upper_bound(offset);  // the first piece that starts after offset
  if (next != out_of_order_.begin()) {
    auto before = std::prev(next);
    at = std::max(at, before->first + before->second.size());
  }
  while (at < stop) {
    const uint64_t gap_end = next == out_of_order_.end() ? stop : std::min(stop, next->first);
    if (gap_end > at) {
      if (out_of_order_.size() >= kMaxPieces) return Result::kTooFragmented;
      out_of_order_.emplace_hint(next, at,
                                 std::vector<uint8_t>(data + (at - offset), data + (gap_end - offset)));
      ooo_bytes_ += size_t(gap_end - at);
    }
    if (next == out_of_order_.end()) break;
    at = std::max(gap_end, next->first + next->second.size());
    ++next;
  }
  return Result::kOk;
}

ReliableRecvStream::Result ReliableRecvStream::feed(const uint8_t* data, size_t len, size_t max_message,
                                                    const DeliverFn& deliver) {
  consumed_ += len;
  while (len > 0) {
    if (!in_message_) {
      if (header_need_ == 0) {
        header_need_ = size_t{1} << (data[0] >> 6);
        header_len_ = 0;
      }
      size_t n = std::min(len, header_need_ - header_len_);
      std::copy(data, data + n, header_ + header_len_);
      header_len_ += n;
      data += n;
      len -= n;
      if (header_len_ < header_need_) break;
      uint64_t v = header_[0] & 0x3f;
      for (size_t i = 1; i < header_need_; ++i)
        v = v << 8 | header_[i];
      header_need_ = 0;
      if (v > max_message) return Result::kMessageTooLarge;
      message_len_ = v;
      in_message_ = true;
      message_.clear();
      message_.reserve(size_t(std::min<uint64_t>(v, kInitialReserve)));
    }
    size_t want = size_t(message_len_ - message_.size());
    size_t n = std::min(len, want);
    message_.insert(message_.end(), data, data + n);
    data += n;
    len -= n;
    if (message_.size() == message_len_) {
      in_message_ = false;
      deliver(std::move(message_));
      message_ = std::vector<uint8_t>();
    }
  }
  return Result::kOk;
}

}  // namespace peerlink::protocol
