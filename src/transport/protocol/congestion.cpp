#include "transport/protocol/congestion.hpp"

#include <algorithm>
#include <cmath>

namespace peerlink::protocol {

namespace {
constexpr double kCubicC = 0.4;     // RFC 9438 §4.1, in segments / s^3
constexpr double kCubicBeta = 0.7;  // multiplicative decrease
constexpr double kRenoBeta = 0.5;

double seconds_of(Duration d) {
  return std::chrono::duration<double>(d).count();
}
}  // namespace

CongestionController::CongestionController(CongestionAlgorithm alg, size_t max_datagram_size,
                                           uint32_t initial_window_packets, uint64_t seed)
    : alg_(alg),
      bbr_(max_datagram_size, uint64_t{initial_window_packets} * max_datagram_size, seed),
      mss_(max_datagram_size),
      cwnd_(uint64_t{initial_window_packets} * max_datagram_size) {}

double CongestionController::pacing_rate(Duration srtt) const {
  if (alg_ == CongestionAlgorithm::kBbr) return bbr_.pacing_rate(srtt);
  const double rtt = std::max(seconds_of(srtt), 1e-6);
  return double(cwnd_) / rtt * (in_slow_start() ? 2.0 : 1.25);
}

void CongestionController::on_ack_event(const AckEvent& e) {
  if (alg_ == CongestionAlgorithm::kBbr) bbr_.on_ack(e);
}

void CongestionController::set_max_datagram_size(size_t size) {
  bbr_.set_max_datagram_size(size);
  // Keep the window's packet count when the packet size grows after path MTU discovery.
  if (size > mss_) cwnd_ = cwnd_ / mss_ * size;
  mss_ = size;
  cwnd_ = std::max(cwnd_, min_window());
}

void CongestionController::on_ack(uint64_t bytes, Instant sent_time, Instant now, Duration min_rtt,
                                  uint64_t bytes_in_flight_before) {
  if (alg_ == CongestionAlgorithm::kBbr || in_recovery(sent_time)) return;
  // Application-limited: the window was not the constraint, so an ack says nothing about capacity.
  if (bytes_in_flight_before * 2 < cwnd_) return;
  if (in_slow_start()) {
    cwnd_ += bytes;
    return;
  }
  if (alg_ == CongestionAlgorithm::kCubic) {
    cubic_on_ack(bytes, now, min_rtt);
    return;
  }
  reno_acked_ += bytes;
  if (reno_acked_ >= cwnd_) {
    reno_acked_ -= cwnd_;
    cwnd_ += mss_;
  }
}

void CongestionController::cubic_on_ack(uint64_t bytes, Instant now, Duration min_rtt) {
  double mss = double(mss_);
  double cwnd = double(cwnd_);
  if (epoch_start_ == Instant::min()) {
    // First congestion avoidance round without a prior loss: start the curve at the current window.
    epoch_start_ = now;
    w_max_ = cwnd;
    k_ = 0;
    w_est_ = cwnd;
  }
  double t = seconds_of(now - epoch_start_) + seconds_of(min_rtt);
  double w_cubic = kCubicC * std::pow(t - k_, 3.0) * mss + w_max_;
  // Reno-friendly estimate (RFC 9438 §4.3).
  double alpha = 3.0 * (1.0 - kCubicBeta) / (1.0 + kCubicBeta);
  w_est_ += alpha * mss * double(bytes) / cwnd;
  double target;
  if (w_cubic < w_est_) {
    target = w_est_;
  } else {
    target = std::clamp(w_cubic, cwnd, 1.5 * cwnd);
  }
  if (target > cwnd) {
    double inc = (target - cwnd) * double(bytes) / cwnd;
    cwnd_ += std::max<uint64_t>(uint64_t(inc), 1);
  }
}

void CongestionController::on_congestion_event(Instant sent_time, Instant now) {
  if (in_recovery(sent_time)) return;
  if (alg_ == CongestionAlgorithm::kBbr) {
    // BBR takes losses from its acknowledgement events; here only the episode is marked (loss bookkeeping
    // of the connection keys on it).
    recovery_start_ = now;
    can_undo_ = false;
    return;
  }
  before_reduction_ = Saved{cwnd_, ssthresh_, w_max_, k_, w_est_, epoch_start_, recovery_start_};
  can_undo_ = true;
  recovery_start_ = now;
  if (alg_ == CongestionAlgorithm::kCubic) {
    double cwnd = double(cwnd_);
    // Fast convergence: give up bandwidth faster when the window keeps shrinking.
    if (cwnd < w_max_) {
      w_max_ = cwnd * (1.0 + kCubicBeta) / 2.0;
    } else {
      w_max_ = cwnd;
    }
    cwnd_ = std::max<uint64_t>(uint64_t(cwnd * kCubicBeta), min_window());
    k_ = std::cbrt(w_max_ * (1.0 - kCubicBeta) / double(mss_) / kCubicC);
    epoch_start_ = now;
    w_est_ = double(cwnd_);
  } else {
    cwnd_ = std::max<uint64_t>(uint64_t(double(cwnd_) * kRenoBeta), min_window());
  }
  ssthresh_ = cwnd_;
  reno_acked_ = 0;
}

void CongestionController::undo_last_reduction() {
  if (!can_undo_ || alg_ == CongestionAlgorithm::kBbr) return;
  can_undo_ = false;
  const Saved& b = before_reduction_;
  cwnd_ = std::max(cwnd_, b.cwnd);
  ssthresh_ = b.ssthresh;
  w_max_ = b.w_max;
  k_ = b.k;
  w_est_ = b.w_est;
  epoch_start_ = b.epoch_start;
  recovery_start_ = b.recovery_start;
}

void CongestionController::on_persistent_congestion() {
  can_undo_ = false;
  if (alg_ == CongestionAlgorithm::kBbr) {
    bbr_.on_persistent_congestion();
    return;
  }
  cwnd_ = min_window();
  epoch_start_ = Instant::min();
  w_max_ = 0;
}

void Pacer::refill(Instant now, double rate) {
  // At high rates the bucket holds what the rate sends in kBurstInterval. A sender that was busy for a
  // while (reading acknowledgements, taking a message) or whose thread woke late catches up instead of losing
  // the time, and sends in fewer, larger batches. A timer wake-up of a user-space thread comes tens to
  // hundreds of microseconds late on the virtual machines measured here; with the bucket capped at 64 KiB
  // (one TSO segment, 64 us at 1 GB/s) that lateness was lost for good, and Host throughput over loopback
  // stayed at 632-1000 MB/s (median 777) against 770-1104 (median 979) with a millisecond of the rate.
  // kMaxBurstBytes only bounds what a rate estimate inflated by bunched acknowledgements could release at
  // once. Below about 12 MB/s a millisecond is under burst_packets_, which then applies.
  constexpr double kBurstInterval = 1e-3, kMaxBurstBytes = 1024 * 1024;
  const double capacity =
      std::max(double(burst_packets_ * max_datagram_), std::min(rate * kBurstInterval, kMaxBurstBytes));
  if (last_ == Instant::min()) {
    tokens_ = capacity;
    last_ = now;
    return;
  }
  if (now <= last_) return;
  tokens_ = std::min(capacity, tokens_ + rate * seconds_of(now - last_));
  last_ = now;
}

Instant Pacer::next_send_time(Instant now, double rate, size_t size) {
  max_datagram_ = std::max(max_datagram_, size);
  refill(now, rate);
  if (tokens_ >= double(size)) return now;
  double wait = (double(size) - tokens_) / std::max(rate, 1.0);
  return now + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(wait)) + Duration(1);
}

void Pacer::on_sent(Instant now, size_t size, double rate) {
  refill(now, rate);
  tokens_ -= double(size);
  if (tokens_ < -double(size)) tokens_ = -double(size);
}

}  // namespace peerlink::protocol
