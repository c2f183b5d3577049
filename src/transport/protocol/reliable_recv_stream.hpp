// The receiving half of one lane's reliable stream: reorders segments, parses the message records and
// hands out each message once it is complete. In-order data is parsed straight from the packet; only
// out-of-order segments are copied aside, each byte once (overlapping or repeated segments add only what
// is new), so what is held is bounded by the flow-control window.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

namespace peerlink::protocol {

class ReliableRecvStream {
 public:
  enum class Result : uint8_t { kOk, kFlowControlViolation, kMessageTooLarge, kTooFragmented };
  // Out-of-order pieces held at most (each a run of bytes no other piece holds). A sender's pieces are its
  // packets' segments past a gap; tens of thousands fill a window of 1,200-byte packets. More is a peer
  // cutting the window into crumbs, each costing a map node.
  static constexpr size_t kMaxPieces = 65536;

  using DeliverFn = std::function<void(std::vector<uint8_t>&& message)>;

  // Handles a segment. `max_offset` is the flow-control limit this side granted.
  Result on_data(uint64_t offset, const uint8_t* data, size_t len, uint64_t max_offset, size_t max_message,
                 const DeliverFn& deliver);

  uint64_t consumed_offset() const { return consumed_; }  // bytes parsed in order
  uint64_t highest_offset() const { return highest_; }    // highest byte end seen
  size_t out_of_order_bytes() const { return ooo_bytes_; }

 private:
  Result feed(const uint8_t* data, size_t len, size_t max_message, const DeliverFn& deliver);
  // Keeps the bytes of [offset, offset + len) that no piece holds yet (offset > consumed_).
  Result hold(uint64_t offset, const uint8_t* data, size_t len);

  uint64_t consumed_ = 0;
  uint64_t highest_ = 0;
  std::map<uint64_t, std::vector<uint8_t>> out_of_order_;
  size_t ooo_bytes_ = 0;
  // Record parser.
  uint8_t header_[8];
  size_t header_len_ = 0;
  size_t header_need_ = 0;  // 0: expecting the first byte of a length
  bool in_message_ = false;
  uint64_t message_len_ = 0;
  std::vector<uint8_t> message_;
};

}  // namespace peerlink::protocol
