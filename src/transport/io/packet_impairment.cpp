#include "transport/io/packet_impairment.hpp"

#include <algorithm>
#include <utility>

namespace peerlink::io {

using protocol::Duration;
using protocol::Instant;

namespace {

// Caps that keep every computation inside int64 nanoseconds whatever the config says. Nobody simulates a
// day of lag, a link faster than 8 GB/s or a 4 GiB router queue, so the caps change nothing real.
constexpr int64_t kMaxDelayMicroseconds = int64_t{24} * 3600 * 1000 * 1000;
constexpr uint64_t kMaxBytes = uint64_t{1} << 32;
constexpr uint64_t kMaxRate = uint64_t{1} << 33;
// transmission_time() multiplies by 1e9 a quotient and a remainder below this; 2^33 * 1e9 < 2^63.
constexpr uint64_t kMaxTimedBytes = uint64_t{1} << 33;
constexpr uint64_t kNanosecondsPerSecond = 1'000'000'000;

double sanitise_percent(double percent) {
  if (!(percent > 0)) return 0;  // also NaN
  return percent > 100 ? 100 : percent;
}

Duration sanitise_delay(std::chrono::microseconds delay) {
  const int64_t us = std::clamp<int64_t>(delay.count(), 0, kMaxDelayMicroseconds);
  return std::chrono::microseconds(us);
}

// Delays are never negative; a release time past the end of time stays at kNever instead of wrapping.
Instant later_by(Instant t, Duration d) {
  if (t > protocol::kNever - d) return protocol::kNever;
  return t + d;
}

// Earliest release first, then submission order: std::*_heap keep the "largest" at the front.
struct ReleasedLater {
  template <typename Key>
  bool operator()(const Key& a, const Key& b) const {
    if (a.due != b.due) return a.due > b.due;
    return a.sequence > b.sequence;
  }
};

}  // namespace

PacketImpairment::PacketImpairment(const NetworkImpairment& config, uint64_t seed)
    : loss_percent_(sanitise_percent(config.loss_percent)),
      rate_(std::min(config.rate_limit_bytes_per_second, kMaxRate)),
      burst_(std::min(config.rate_limit_burst_bytes, kMaxBytes)),
      queue_limit_(std::min(config.rate_limit_queue_bytes, kMaxBytes)),
      lag_(sanitise_delay(config.lag)),
      jitter_(sanitise_delay(config.jitter)),
      reorder_percent_(sanitise_percent(config.reorder_percent)),
      reorder_lag_(sanitise_delay(config.reorder_lag)),
      duplicate_percent_(sanitise_percent(config.duplicate_percent)),
      duplicate_lag_max_(sanitise_delay(config.duplicate_lag_max)),
      rng_(seed) {
  active_ = loss_percent_ > 0 || rate_ > 0 || lag_.count() > 0 || jitter_.count() > 0 ||
            reorder_percent_ > 0 || duplicate_percent_ > 0;
}

void PacketImpairment::submit(Instant now, const protocol::PathAddress& address, const uint8_t* data,
                              size_t len) {
  ++counters_.submitted;
  if (chance(loss_percent_)) {
    ++counters_.dropped_loss;
    return;
  }
  Instant due = now;
  if (!rate_limit(now, len, due)) {
    ++counters_.dropped_rate_limit;
    return;
  }
  due = later_by(due, lag_ + uniform(jitter_));
  if (chance(reorder_percent_)) {
    due = later_by(due, reorder_lag_);
    ++counters_.reordered;
  }
  if (due > now) ++counters_.delayed;
  hold(due, address, data, len);
  if (chance(duplicate_percent_)) {
    ++counters_.duplicated;
    hold(later_by(due, uniform(duplicate_lag_max_)), address, data, len);
  }
}

bool PacketImpairment::pop_due(Instant now, ImpairedDatagram& out) {
  if (heap_.empty() || heap_.front().due > now) return false;
  std::pop_heap(heap_.begin(), heap_.end(), ReleasedLater{});
  const uint32_t slot = heap_.back().slot;
  heap_.pop_back();
  Held& held = held_[slot];
  out.address = held.address;
  out.data.swap(held.data);
  held.data.clear();
  free_slots_.push_back(slot);
  ++counters_.released;
  return true;
}

bool PacketImpairment::rate_limit(Instant now, size_t len, Instant& leaves) {
  leaves = now;
  if (rate_ == 0) return true;

  while (waiting_count_ > 0 && waiting_[waiting_head_].leaves <= now) {
    waiting_bytes_ -= waiting_[waiting_head_].bytes;
    waiting_head_ = (waiting_head_ + 1) % waiting_.size();
    --waiting_count_;
  }

  // A datagram larger than the burst can never find that many tokens; it waits for a full bucket instead
  // and leaves it in debt, which later datagrams pay for by waiting.
  const uint64_t bytes = std::min<uint64_t>(len, kMaxTimedBytes);
  const uint64_t needed = std::min(bytes, burst_);
  if (bucket_full_at_ > now) {
    // Unsigned, because with a garbage `now` the true difference may not fit in int64.
    const uint64_t until_full =
        uint64_t(bucket_full_at_.time_since_epoch().count()) - uint64_t(now.time_since_epoch().count());
    const Duration slack = transmission_time(burst_ - needed);
    if (until_full > uint64_t(slack.count())) leaves = bucket_full_at_ - slack;
  }

  if (leaves > now) {
    // Drop-tail: the queue holds whole datagrams until the bucket lets them go.
    if (waiting_bytes_ + bytes > queue_limit_) return false;
    if (bytes > 0) {
      if (waiting_count_ == waiting_.size()) {
        std::vector<Waiting> grown(std::max<size_t>(16, waiting_.size() * 2));
        for (size_t i = 0; i < waiting_count_; ++i)
          grown[i] = waiting_[(waiting_head_ + i) % waiting_.size()];
        waiting_.swap(grown);
        waiting_head_ = 0;
      }
      waiting_[(waiting_head_ + waiting_count_) % waiting_.size()] = Waiting{leaves, bytes};
      ++waiting_count_;
      waiting_bytes_ += bytes;
    }
  }
  bucket_full_at_ = later_by(std::max(bucket_full_at_, leaves), transmission_time(bytes));
  return true;
}

Duration PacketImpairment::transmission_time(uint64_t bytes) const {
  // Rounded up, so the limiter never lets through more than the configured rate.
  const uint64_t whole_seconds = bytes / rate_;
  const uint64_t rest = bytes % rate_;
  const uint64_t ns =
      whole_seconds * kNanosecondsPerSecond + (rest * kNanosecondsPerSecond + rate_ - 1) / rate_;
  return Duration(int64_t(ns));
}

void PacketImpairment::hold(Instant due, const protocol::PathAddress& address, const uint8_t* data,
                            size_t len) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = uint32_t(held_.size());
    held_.emplace_back();
  }
  Held& held = held_[slot];
  held.address = address;
  if (len > 0)
    held.data.assign(data, data + len);
  else
    held.data.clear();
  heap_.push_back(Key{due, next_sequence_++, slot});
  std::push_heap(heap_.begin(), heap_.end(), ReleasedLater{});
}

bool PacketImpairment::chance(double percent) {
  // 0 % (the default) must cost nothing per datagram, so certain outcomes skip the draw.
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  const double unit = double(next_random() >> 11) * 0x1.0p-53;  // [0, 1)
  return unit * 100 < percent;
}

Duration PacketImpairment::uniform(Duration max) {
  if (max.count() <= 0) return Duration(0);
  // max is capped at a day (< 2^47 ns), so the modulo bias is below 2^-17: irrelevant for a simulation.
  return Duration(int64_t(next_random() % (uint64_t(max.count()) + 1)));
}

uint64_t PacketImpairment::next_random() {
  return rng_.next();
}

}  // namespace peerlink::io
