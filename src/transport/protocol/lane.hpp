// A lane: one independently ordered channel of a connection, with its own reliable stream in each
// direction, its queue of unreliable messages, its flow-control credit and its scheduling priority/weight.
// Also the reassembly of fragmented unreliable messages (connection-wide).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "transport/protocol/connection_types.hpp"
#include "transport/protocol/frames.hpp"
#include "transport/protocol/reliable_recv_stream.hpp"
#include "transport/protocol/reliable_send_stream.hpp"
#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

struct UnreliableOutgoing {
  std::vector<uint8_t> data;
  uint64_t id = 0;
  size_t sent = 0;  // bytes already sent as fragments
  Instant queued{};
};

class Lane {
 public:
  LaneConfig config;

  ReliableSendStream send;
  Instant reliable_unsent_since = kNever;
  std::deque<UnreliableOutgoing> unreliable;
  size_t unreliable_bytes = 0;
  uint64_t peer_max = 0;  // flow-control credit the peer granted on this lane
  double vtime = 0;       // weighted fair queueing: bytes sent / weight
  bool active = false;    // had data to send at the last scheduling round

  ReliableRecvStream recv;
  uint64_t local_max = 0;  // credit we granted
  bool max_dirty = false;  // a MAX_LANE_DATA must be sent

  uint64_t reliable_received = 0;  // message numbers
  uint64_t unreliable_received = 0;

  uint64_t queued_bytes() const { return send.buffered_bytes() + unreliable_bytes; }
  bool has_unreliable() const { return !unreliable.empty(); }
};

class UnreliableReassembly {
 public:
  static constexpr size_t kMaxPartial = 16;
  // Fragments of one message: a 64 KiB message in 1,200-byte packets has about 55. More means a peer
  // slicing a message into crumbs: the message is dropped.
  static constexpr size_t kMaxFragments = 256;

  // Adds a fragment; returns true and fills `out`/`lane` when it completes a message.
  bool add(Instant now, const UnreliableFrame& f, std::vector<uint8_t>& out, uint32_t& lane);
  // Drops partial messages older than max_age; returns how many were dropped.
  size_t expire(Instant now, Duration max_age);
  size_t dropped() const { return dropped_; }
  bool empty() const { return partial_.empty(); }

 private:
  // The fragments as they came, put together once the last one is in: memory and work in proportion to
  // the bytes received (allocating the announced length at the first fragment let a peer make the
  // receiver zero 64 KiB per 12-byte frame).
  struct Partial {
    uint32_t lane = 0;
    uint64_t total = 0;
    std::map<uint64_t, std::vector<uint8_t>> fragments;  // by offset; never overlapping
    size_t received = 0;
    Instant first{};
  };
  std::map<uint64_t, Partial> partial_;
  size_t dropped_ = 0;
};

}  // namespace peerlink::protocol
