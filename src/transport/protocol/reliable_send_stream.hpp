// The sending half of one lane's reliable stream: messages become a byte stream of records
// (varint length, bytes) that is sent in segments, acknowledged and retransmitted by byte range, and freed
// as soon as a prefix is acknowledged. Cost is linear in the bytes sent, whatever the message sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "transport/crypto/aead.hpp"
#include "transport/protocol/interval_set.hpp"

namespace peerlink::protocol {

// The parts of a packet's payload that its seal reads from the send streams instead of from the packet
// (crypto::Aead::seal_gathered).
struct PacketSources {
  static constexpr size_t kMax = 8;
  // Runs shorter than this are copied: each run read where it lies costs a cipher call of its own. Most
  // segments are one run (they cross a chunk boundary seldom), so the value matters little.
  static constexpr size_t kMinRun = 256;
  uint8_t* payload = nullptr;  // where the sealed payload starts: Source::at counts from here
  crypto::Aead::Source items[kMax];
  size_t count = 0;
};

class ReliableSendStream {
 public:
  // Appends one message record. Small messages share buffers, so many of them cost few allocations.
  void push_message(const uint8_t* data, size_t len);
  // The same, taking the message's buffer: a large message is sent from that memory, not copied (its
  // length prefix is kept beside it). A small one is copied as above. message is left empty.
  void push_message(std::vector<uint8_t>&& message);

  uint64_t end_offset() const { return end_; }
  uint64_t next_offset() const { return next_; }  // first byte never sent
  uint64_t unsent_bytes() const { return end_ - next_; }
  // Bytes held: sent but unacknowledged plus unsent.
  uint64_t buffered_bytes() const { return end_ - acked_prefix_; }
  bool has_retransmit() const { return !retransmit_.empty(); }
  bool all_acked() const { return acked_prefix_ == end_; }

  // Picks the next segment: lost data first, then new data below `new_data_limit` (flow control).
  // Returns false if there is nothing to send.
  bool next_segment(size_t max_len, uint64_t new_data_limit, uint64_t& offset, size_t& len) const;
  // Copies stream bytes [offset, offset+len) to out.
  void copy_out(uint64_t offset, size_t len, uint8_t* out) const;
  // The same into a packet about to be sealed, except that long runs are not copied but recorded in
  // `sources` for the seal to read where they lie (while room is left there). Valid until the stream next
  // changes: the packet must be sealed first.
  void gather_out(uint64_t offset, size_t len, uint8_t* out, PacketSources& sources) const;
  // Records that [offset, offset+len) went out (new data advances next_offset; retransmitted data leaves
  // the retransmit set).
  void on_sent(uint64_t offset, size_t len);
  void on_acked(uint64_t offset, size_t len);
  void on_lost(uint64_t offset, size_t len);

 private:
  // A run of stream bytes: either small records packed together (in bytes), or one large record, its
  // length prefix kept here and its message in bytes (taken over or copied whole, never appended to).
  struct Chunk {
    uint64_t start;
    std::vector<uint8_t> bytes;
    uint8_t prefix_len = 0;  // 0 for packed small records
    uint8_t prefix[8];
    size_t size() const { return prefix_len + bytes.size(); }
  };
  void push_large(std::vector<uint8_t>&& message, const uint8_t* header, size_t header_len);
  void append(const uint8_t* data, size_t len);
  void release_acked();
  size_t chunk_index(uint64_t offset) const;
  // Calls piece(data, n) for the stored runs of stream bytes [offset, offset+len), in order.
  template <typename Piece>
  void for_each_piece(uint64_t offset, size_t len, Piece&& piece) const;

  std::deque<Chunk> chunks_;
  mutable size_t chunk_hint_ = 0;  // index of the chunk chunk_index() found last (a guess, checked)
  uint64_t end_ = 0;
  uint64_t next_ = 0;
  uint64_t acked_prefix_ = 0;
  IntervalSet acked_;       // acknowledged ranges above acked_prefix_
  IntervalSet retransmit_;  // lost ranges waiting to be sent again
};

}  // namespace peerlink::protocol
