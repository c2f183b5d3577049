// Round-trip time estimation (RFC 9002 §5).
#pragma once

#include <algorithm>

#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

class RttEstimator {
 public:
  explicit RttEstimator(Duration initial) : smoothed_(initial), variance_(initial / 2) {}

  void on_sample(Duration latest, Duration ack_delay, Duration max_ack_delay) {
    latest_ = latest;
    if (!has_sample_) {
      has_sample_ = true;
      min_ = latest;
      smoothed_ = latest;
      variance_ = latest / 2;
      return;
    }
    min_ = std::min(min_, latest);
    ack_delay = std::min(ack_delay, max_ack_delay);
    Duration adjusted = latest;
    if (latest >= min_ + ack_delay) adjusted = latest - ack_delay;
    Duration diff = smoothed_ > adjusted ? smoothed_ - adjusted : adjusted - smoothed_;
    variance_ = (variance_ * 3 + diff) / 4;
    smoothed_ = (smoothed_ * 7 + adjusted) / 8;
  }

  bool has_sample() const { return has_sample_; }
  Duration smoothed() const { return smoothed_; }
  Duration variance() const { return variance_; }
  Duration min() const { return has_sample_ ? min_ : smoothed_; }
  Duration latest() const { return has_sample_ ? latest_ : smoothed_; }

  // Probe timeout before backoff (RFC 9002 §6.2.1).
  Duration pto(Duration max_ack_delay) const {
    return smoothed_ + std::max<Duration>(variance_ * 4, kGranularity) + max_ack_delay;
  }

  static constexpr Duration kGranularity = milliseconds(1);

 private:
  bool has_sample_ = false;
  Duration smoothed_;
  Duration variance_;
  Duration min_{};
  Duration latest_{};
};

}  // namespace peerlink::protocol
