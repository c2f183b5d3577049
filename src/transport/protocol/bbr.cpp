#include "transport/protocol/bbr.hpp"

#include <algorithm>
#include <cmath>

namespace peerlink::protocol {

namespace {

constexpr double kStartupGain = 2.885;  // 2 / ln 2: doubles the sending rate every round
constexpr double kDrainGain = 1.0 / kStartupGain;
constexpr double kCwndGain = 2.0;
// ProbeBW: one round above the estimate to find more bandwidth, one below to drain the queue that made,
// six at the estimate.
constexpr double kCycleGains[] = {1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
constexpr int kCycleLength = 8;
constexpr uint64_t kBandwidthWindowRounds = 10;
constexpr Duration kMinRttWindow = std::chrono::seconds(10);
constexpr Duration kProbeRttTime = std::chrono::milliseconds(200);
constexpr double kFullBandwidthGrowth = 1.25;
constexpr int kFullBandwidthRounds = 3;
constexpr double kPacingMargin = 0.99;  // pace slightly below the estimate, so no queue builds at gain 1
constexpr double kLossThreshold = 0.02;
// A round that loses more than a fifth of what it sent, and at least 8 packets, is no random loss on any
// usable link (at 5 % random loss, a round of 40 packets does so about once in 8,000): a queue
// overflows by more than the window's allowances explain (a relay that forwards in bursts, whose own
// queue makes the RTT vary and so the allowances large). Then the cap may go below the allowances,
// down to the bare bandwidth-delay product.
constexpr double kHeavyLossThreshold = 0.20;
constexpr uint64_t kHeavyLossPackets = 8;
// Packets lost in a round, at least, for the round to count as lossy. Start-up asks for more: while it
// doubles, the first rounds are small, and three random losses among 60 packets (5 % loss) would end it
// far below the bottleneck; a queue that overflows under its doubling loses many more than that at once.
constexpr uint64_t kLossPackets = 3;
constexpr uint64_t kStartupLossPackets = 8;
constexpr double kLossBeta = 0.85;
// The jitter allowance: this many times the mean change between successive RTT samples.
constexpr double kJitterFactor = 4;
constexpr double kJitterGain = 1.0 / 8;  // of each new sample, in that mean
constexpr double kMaxAllowance = 0.1;    // seconds of the estimated bandwidth, at most, for each allowance

double seconds_of(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

double RateSample::rate() const {
  if (!valid || interval <= Duration::zero()) return 0;
  return double(delivered) / seconds_of(interval);
}

void WindowedMax::reset(uint64_t time, double value) {
  s_[0] = s_[1] = s_[2] = Sample{time, value};
}

void WindowedMax::update(uint64_t time, double value) {
  if (value >= s_[0].value || time - s_[2].time > window_) {
    reset(time, value);  // a new maximum, or nothing in the window is recent enough to keep
    return;
  }
  if (value >= s_[1].value) {
    s_[1] = s_[2] = Sample{time, value};
  } else if (value >= s_[2].value) {
    s_[2] = Sample{time, value};
  }
  // Expire the best when it is older than the window; keep the later sub-window choices fresh, so that a
  // maximum that expires hands over to one from the last part of the window.
  if (time - s_[0].time > window_) {
    s_[0] = s_[1];
    s_[1] = s_[2];
    s_[2] = Sample{time, value};
    if (time - s_[0].time > window_) {
      s_[0] = s_[1];
      s_[1] = s_[2];
    }
  } else if (s_[1].time == s_[0].time && time - s_[1].time > window_ / 4) {
    s_[1] = s_[2] = Sample{time, value};
  } else if (s_[2].time == s_[1].time && time - s_[2].time > window_ / 2) {
    s_[2] = Sample{time, value};
  }
}

Bbr::Bbr(uint64_t max_datagram_size, uint64_t initial_window, uint64_t seed)
    : mss_(max_datagram_size),
      initial_window_(initial_window),
      cwnd_(initial_window),
      pacing_gain_(kStartupGain),
      cwnd_gain_(kStartupGain),
      bandwidth_(kBandwidthWindowRounds),
      extra_acked_(kBandwidthWindowRounds),
      cycle_seed_(seed ^ 0x9e3779b97f4a7c15ull) {}

std::optional<Duration> Bbr::min_rtt() const {
  if (min_rtt_ == Duration::max()) return std::nullopt;
  return min_rtt_;
}

uint64_t Bbr::target_inflight(double gain) const {
  const double bw = bandwidth_.best();
  if (bw <= 0 || min_rtt_ == Duration::max()) return initial_window_;
  const double bdp = bw * seconds_of(min_rtt_);
  return uint64_t(gain * bdp) + 3 * mss_;
}

double Bbr::pacing_rate(Duration srtt) const {
  if (pacing_rate_ > 0) return pacing_rate_;
  const double rtt = std::max(seconds_of(srtt), 1e-3);
  return kStartupGain * double(cwnd_) / rtt;
}

void Bbr::on_ack(const AckEvent& e) {
  update_round(e);
  update_bandwidth(e);
  update_loss_bound(e);
  check_full_pipe(e);
  if (mode_ == Mode::kStartup && filled_pipe_) {
    mode_ = Mode::kDrain;
    pacing_gain_ = kDrainGain;
    cwnd_gain_ = kStartupGain;
  }
  if (mode_ == Mode::kDrain &&
      e.bytes_in_flight_before - std::min(e.bytes_in_flight_before, e.newly_acked) <= target_inflight(1.0)) {
    enter_probe_bw(e.now);
  }
  if (mode_ == Mode::kProbeBw) advance_cycle(e);
  update_min_rtt(e);
  update_ack_aggregation(e);
  update_jitter(e);
  set_pacing_rate();
  set_window(e);
}

void Bbr::update_round(const AckEvent& e) {
  round_start_ = false;
  if (e.sample.valid && e.sample.prior_delivered >= next_round_delivered_) {
    next_round_delivered_ = e.delivered_total;
    ++round_count_;
    round_start_ = true;
  }
}

void Bbr::update_bandwidth(const AckEvent& e) {
  const double rate = e.sample.rate();
  if (rate <= 0) return;
  // An application-limited sample only says the path carries at least that much.
  if (!e.sample.app_limited || rate >= bandwidth_.best()) bandwidth_.update(round_count_, rate);
}

void Bbr::update_loss_bound(const AckEvent& e) {
  // A loss that turned out to be reordering is no loss.
  round_lost_ += e.newly_lost;
  round_lost_ -= std::min(round_lost_, e.newly_spurious);
  round_max_inflight_ = std::max(round_max_inflight_, e.bytes_in_flight_before);
  if (!round_start_) return;
  const uint64_t delivered = e.delivered_total - round_delivered_start_;
  const uint64_t min_lost = (filled_pipe_ ? kLossPackets : kStartupLossPackets) * mss_;
  const bool lossy =
      round_lost_ >= min_lost && double(round_lost_) > kLossThreshold * double(delivered + round_lost_);
  if (lossy) {
    // The queue overflowed: do not put more than this much in flight again soon, and leave start-up (its
    // doubling is what overflowed it).
    inflight_hi_ = std::max<uint64_t>(uint64_t(kLossBeta * double(round_max_inflight_)), min_window());
    filled_pipe_ = true;
    heavy_loss_ = round_lost_ >= kHeavyLossPackets * mss_ &&
                  double(round_lost_) > kHeavyLossThreshold * double(delivered + round_lost_);
  } else if (inflight_hi_ != UINT64_MAX) {
    inflight_hi_ += mss_;
    // Lifted once it is far above the window the model gives anyway, allowances included (without them,
    // on a path where the allowances are most of the window, a cap that binds was lifted at once).
    if (inflight_hi_ > 2 * (target_inflight(kCwndGain) + allowances_)) {
      inflight_hi_ = UINT64_MAX;
      heavy_loss_ = false;
    }
  }
  round_lost_ = 0;
  round_delivered_start_ = e.delivered_total;
  round_max_inflight_ = 0;
}

void Bbr::check_full_pipe(const AckEvent& e) {
  if (filled_pipe_ || !round_start_ || e.sample.app_limited) return;
  if (bandwidth_.best() >= full_bandwidth_ * kFullBandwidthGrowth) {
    full_bandwidth_ = bandwidth_.best();
    full_bandwidth_rounds_ = 0;
    return;
  }
  if (++full_bandwidth_rounds_ >= kFullBandwidthRounds) filled_pipe_ = true;
}

void Bbr::enter_probe_bw(Instant now) {
  mode_ = Mode::kProbeBw;
  cwnd_gain_ = kCwndGain;
  // Start anywhere in the cycle but in the draining phase, so flows that start together do not probe in
  // step (a deterministic spread from the seed, which advances per entry).
  cycle_seed_ = cycle_seed_ * 6364136223846793005ull + 1442695040888963407ull;
  cycle_index_ = int((cycle_seed_ >> 33) % (kCycleLength - 1));
  if (cycle_index_ >= 1) ++cycle_index_;
  cycle_stamp_ = now;
  pacing_gain_ = kCycleGains[cycle_index_];
}

void Bbr::advance_cycle(const AckEvent& e) {
  const bool full_length = min_rtt_ != Duration::max() && e.now - cycle_stamp_ > min_rtt_;
  bool next;
  if (pacing_gain_ > 1.0) {
    // Probe until the extra bytes are really in flight, or until the path says no; where the loss bound
    // keeps them from ever being in flight, one round trip is the probe.
    next = full_length && (e.newly_lost > 0 || e.bytes_in_flight_before >= target_inflight(pacing_gain_) ||
                           inflight_hi_ < target_inflight(pacing_gain_));
  } else if (pacing_gain_ < 1.0) {
    next = full_length || e.bytes_in_flight_before <= target_inflight(1.0);
  } else {
    next = full_length;
  }
  if (!next) return;
  cycle_index_ = (cycle_index_ + 1) % kCycleLength;
  cycle_stamp_ = e.now;
  pacing_gain_ = kCycleGains[cycle_index_];
}

void Bbr::update_min_rtt(const AckEvent& e) {
  const bool expired = min_rtt_ != Duration::max() && e.now > min_rtt_stamp_ + kMinRttWindow;
  if (e.rtt && (*e.rtt < min_rtt_ || expired)) {
    min_rtt_ = std::max(*e.rtt, Duration(1));
    min_rtt_stamp_ = e.now;
  }
  if (expired && mode_ != Mode::kProbeRtt) {
    // Drain the queue for a moment to see the path's own round trip again.
    mode_ = Mode::kProbeRtt;
    pacing_gain_ = 1.0;
    cwnd_gain_ = 1.0;
    prior_cwnd_ = std::max(prior_cwnd_, cwnd_);
    probe_rtt_timing_ = false;
  }
  if (mode_ != Mode::kProbeRtt) return;
  const uint64_t inflight = e.bytes_in_flight_before - std::min(e.bytes_in_flight_before, e.newly_acked);
  if (!probe_rtt_timing_ && inflight <= min_window()) {
    probe_rtt_timing_ = true;
    probe_rtt_done_ = e.now + kProbeRttTime;
    probe_rtt_round_done_ = false;
    next_round_delivered_ = e.delivered_total;
  } else if (probe_rtt_timing_) {
    if (round_start_) probe_rtt_round_done_ = true;
    if (probe_rtt_round_done_ && e.now >= probe_rtt_done_) {
      min_rtt_stamp_ = e.now;
      cwnd_ = std::max(cwnd_, prior_cwnd_);
      prior_cwnd_ = 0;
      if (filled_pipe_) {
        enter_probe_bw(e.now);
      } else {
        mode_ = Mode::kStartup;
        pacing_gain_ = cwnd_gain_ = kStartupGain;
      }
    }
  }
}

void Bbr::update_ack_aggregation(const AckEvent& e) {
  const double bw = bandwidth_.best();
  if (bw <= 0 || e.newly_acked == 0) return;
  // An epoch lasts while acknowledgements run ahead of what the estimate would have delivered since it
  // began; the excess at each acknowledgement is the aggregation.
  double expected = bw * seconds_of(e.now - ack_epoch_start_);
  if (double(ack_epoch_acked_) <= expected || ack_epoch_acked_ > (uint64_t{1} << 24)) {
    ack_epoch_start_ = e.now;
    ack_epoch_acked_ = 0;
    expected = 0;
  }
  ack_epoch_acked_ += e.newly_acked;
  const double extra = std::min(double(ack_epoch_acked_) - expected, double(cwnd_));
  extra_acked_.update(round_count_, std::min(extra, bw * kMaxAllowance));
}

void Bbr::update_jitter(const AckEvent& e) {
  if (!e.rtt) return;
  // As RTP's interarrival jitter (RFC 3550, 6.4.1): a jittery path delays each packet at random, so
  // successive samples differ by about the spread; a queue that builds and drains over many packets, the
  // sender's own included, moves them little from one to the next. The RTT's mean deviation from its
  // average counts both, and a queue that made it grow got room to stand in.
  if (last_rtt_ != Duration::max()) {
    const double change = std::abs(seconds_of(*e.rtt) - seconds_of(last_rtt_));
    rtt_jitter_ += (change - rtt_jitter_) * kJitterGain;
  }
  last_rtt_ = *e.rtt;
}

void Bbr::set_pacing_rate() {
  const double bw = bandwidth_.best();
  if (bw <= 0) return;
  if (pacing_rate_ == 0 && min_rtt_ != Duration::max()) {
    // The first sample covers a packet or two; start from the initial window's rate instead.
    pacing_rate_ = kStartupGain * double(initial_window_) / std::max(seconds_of(min_rtt_), 1e-3);
  }
  const double rate = pacing_gain_ * bw * kPacingMargin;
  // In start-up the estimate only grows; never slow down because of a low early sample.
  if (filled_pipe_ || rate > pacing_rate_) pacing_rate_ = rate;
}

void Bbr::set_window(const AckEvent& e) {
  const double bw = bandwidth_.best();
  // Room on top of the bandwidth-delay product: for acknowledgements that come in bursts (after start-up,
  // whose own growth would look like aggregation), and because a jittery path takes longer than its
  // minimum RTT to deliver most packets: the bandwidth of 4 times the RTT's packet-to-packet jitter
  // (update_jitter), or the window, not the path, limits the rate (and the rate samples, and so the
  // estimate, shrink with it). Each at most 100 ms of the bandwidth.
  const uint64_t aggregation = filled_pipe_ ? uint64_t(extra_acked_.best()) : 0;
  const uint64_t jitter = uint64_t(bw * std::min(kJitterFactor * rtt_jitter_, kMaxAllowance));
  allowances_ = aggregation + jitter;
  const uint64_t target = target_inflight(cwnd_gain_) + allowances_;
  if (filled_pipe_) {
    cwnd_ = std::min(cwnd_ + e.newly_acked, target);
  } else if (cwnd_ < target || e.delivered_total < initial_window_) {
    cwnd_ += e.newly_acked;
  }
  if (inflight_hi_ != UINT64_MAX)
    cwnd_ = std::min(cwnd_, std::max(inflight_hi_, target_inflight(1.0) + (heavy_loss_ ? 0 : allowances_)));
  cwnd_ = std::max(cwnd_, min_window());
  if (mode_ == Mode::kProbeRtt) cwnd_ = std::min(cwnd_, min_window());
}

void Bbr::on_persistent_congestion() {
  cwnd_ = min_window();
}

}  // namespace peerlink::protocol
