// A simulated bad network for one direction of a Host's datagrams (peerlink::NetworkImpairment): loss, a
// token-bucket rate limit with a drop-tail queue, lag, jitter, reordering and duplication. Sans-I/O: the
// caller passes `now` in, submits datagrams and later pulls out the ones that are due.
//
//   PacketImpairment impairment(config.simulation.send, seed);
//   if (impairment.active()) {
//     impairment.submit(now, to, data, len);                        // instead of sending it
//     ImpairedDatagram d;
//     while (impairment.pop_due(now, d)) socket.send(d.address, d.data);
//     wake_at(impairment.next_due());
//   }
//
// Deterministic: the same config, seed and sequence of calls give the same drops, delays and order.
// Thread-safety: none; one owner (the Host's service thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "peerlink/network_simulation.hpp"
#include "transport/crypto/random.hpp"
#include "transport/protocol/path_address.hpp"
#include "transport/protocol/time.hpp"

namespace peerlink::io {

struct ImpairedDatagram {
  protocol::PathAddress address;
  std::vector<uint8_t> data;
};

class PacketImpairment {
 public:
  // `config` is sanitised, never trusted, so garbage cannot crash: percentages are clamped to 0..100
  // (negative or NaN = 0), negative durations count as 0, and delays are capped at a day, the rate at 2^33
  // bytes/s, burst and queue at 4 GiB, which keeps all arithmetic within int64 nanoseconds.
  PacketImpairment(const NetworkImpairment& config, uint64_t seed);

  // False when the (sanitised) config impairs nothing: the Host then bypasses this object entirely.
  bool active() const { return active_; }

  // Takes a copy of one datagram. It is dropped, or held until its release time, even when that is `now`.
  void submit(protocol::Instant now, const protocol::PathAddress& address, const uint8_t* data, size_t len);

  // The next held datagram due at or before `now`, in release-time order (submission order among equal
  // times). `out.data`'s previous buffer is kept for reuse by a later submit, so a caller that passes the
  // same `out` each time makes the steady state allocation-free.
  bool pop_due(protocol::Instant now, ImpairedDatagram& out);

  protocol::Instant next_due() const { return heap_.empty() ? protocol::kNever : heap_.front().due; }
  size_t queued() const { return heap_.size(); }

  struct Counters {
    uint64_t submitted = 0;
    uint64_t dropped_loss = 0;
    uint64_t dropped_rate_limit = 0;  // the rate limiter's queue was full
    uint64_t delayed = 0;             // released later than submitted (duplicates not counted)
    uint64_t reordered = 0;           // given the extra reorder_lag
    uint64_t duplicated = 0;          // extra copies made
    uint64_t released = 0;            // popped, copies included
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Held {
    protocol::PathAddress address;
    std::vector<uint8_t> data;
  };
  // The heap orders small keys; the datagrams stay put in `held_` so their buffers are reused.
  struct Key {
    protocol::Instant due;
    uint64_t sequence;
    uint32_t slot;
  };
  // A datagram waiting for tokens, to know how full the rate limiter's queue is.
  struct Waiting {
    protocol::Instant leaves;
    uint64_t bytes;
  };

  // False: dropped, the queue is full. Otherwise `leaves` is when the bucket has tokens for it.
  bool rate_limit(protocol::Instant now, size_t len, protocol::Instant& leaves);
  protocol::Duration transmission_time(uint64_t bytes) const;
  void hold(protocol::Instant due, const protocol::PathAddress& address, const uint8_t* data, size_t len);
  bool chance(double percent);
  protocol::Duration uniform(protocol::Duration max);  // 0..max inclusive
  uint64_t next_random();

  // Sanitised config.
  bool active_ = false;
  double loss_percent_ = 0;
  uint64_t rate_ = 0;  // bytes per second, 0 = unlimited
  uint64_t burst_ = 0;
  uint64_t queue_limit_ = 0;
  protocol::Duration lag_{0};
  protocol::Duration jitter_{0};
  double reorder_percent_ = 0;
  protocol::Duration reorder_lag_{0};
  double duplicate_percent_ = 0;
  protocol::Duration duplicate_lag_max_{0};

  crypto::SeededRandom rng_;  // xoshiro256**: fast, and reproducible everywhere from the seed alone

  // Token bucket as a theoretical arrival time (GCRA): the instant the bucket will be full again once every
  // admitted datagram has been paid for. Equivalent to a level, but exact in integer nanoseconds.
  protocol::Instant bucket_full_at_ = protocol::Instant::min();
  std::vector<Waiting> waiting_;  // ring buffer, in leaving order
  size_t waiting_head_ = 0;
  size_t waiting_count_ = 0;
  uint64_t waiting_bytes_ = 0;

  std::vector<Held> held_;
  std::vector<uint32_t> free_slots_;
  std::vector<Key> heap_;
  uint64_t next_sequence_ = 0;
  Counters counters_;
};

}  // namespace peerlink::io
