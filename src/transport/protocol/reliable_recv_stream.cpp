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
  if (offset > consumed_) {
    auto it = out_of_order_.find(offset);
    if (it != out_of_order_.end()) {
      if (it->second.size() >= len) return Result::kOk;
      ooo_bytes_ -= it->second.size();
      it->second.assign(data, data + len);
    } else {
      out_of_order_.emplace(offset, std::vector<uint8_t>(data, data + len));
    }
    ooo_bytes_ += len;
    return Result::kOk;
  }
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
