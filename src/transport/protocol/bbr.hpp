// BBR congestion control: a model of the path (its bottleneck bandwidth and its round-trip propagation
// time) drives the pacing rate and bounds the bytes in flight, instead of reacting to every loss. Random,
// non-congestive loss (Wi-Fi, mobile) leaves the model alone, so the rate stays near the link's; a queue
// that keeps overflowing (loss above 2 % in a round) caps the bytes in flight, so a loss-based flow on the
// same bottleneck is not starved. After Cardwell et al., "BBR: Congestion-Based Congestion Control" (ACM
// Queue, 2016) and draft-cardwell-iccrg-bbr-congestion-control; rate samples after
// draft-cheng-iccrg-delivery-rate-estimation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

// One delivery-rate sample, taken from the newest packet an acknowledgement covers: the bytes delivered
// between that packet's send and its acknowledgement, over the longer of the send and the ack interval.
struct RateSample {
  bool valid = false;
  uint64_t delivered = 0;        // bytes delivered during the interval
  Duration interval{};           // max(send elapsed, ack elapsed)
  uint64_t prior_delivered = 0;  // the connection's delivered count when that packet was sent
  bool app_limited = false;      // the sender ran out of data while the packet was in flight
  Instant send_time{};           // when that packet was sent (ties on prior_delivered go to the later one)
  double rate() const;           // bytes per second; 0 when not valid
};

// What one acknowledgement told the sender, after every packet it covers was processed.
struct AckEvent {
  Instant now{};
  RateSample sample;
  uint64_t delivered_total = 0;         // bytes delivered on the connection so far, this ack included
  uint64_t newly_acked = 0;             // bytes this ack acknowledged
  uint64_t newly_lost = 0;              // bytes declared lost while processing it
  uint64_t newly_spurious = 0;          // bytes declared lost earlier that this ack showed had arrived
  uint64_t bytes_in_flight_before = 0;  // when the ack arrived
  std::optional<Duration> rtt;          // the round trip this ack measured, if it measured one
};

// A windowed maximum over the last `window` rounds (Kathleen Nichols' three-sample estimator: the best,
// second-best and third-best values in successive sub-windows, so the maximum expires without a history).
class WindowedMax {
 public:
  explicit WindowedMax(uint64_t window) : window_(window) {}
  double best() const { return s_[0].value; }
  void update(uint64_t time, double value);
  void reset(uint64_t time, double value);

 private:
  struct Sample {
    uint64_t time = 0;
    double value = 0;
  };
  uint64_t window_;
  Sample s_[3];
};

class Bbr {
 public:
  // seed spreads the ProbeBW phase of flows that start together.
  Bbr(uint64_t max_datagram_size, uint64_t initial_window, uint64_t seed);

  void on_ack(const AckEvent& e);
  // Losses spread over more than three probe timeouts: the bytes in flight start again from the minimum
  // (the model is kept; the window grows back toward it as acknowledgements come).
  void on_persistent_congestion();
  void set_max_datagram_size(size_t size) { mss_ = size; }

  uint64_t window() const { return cwnd_; }
  // Bytes per second at which packets should leave. Before the first bandwidth sample: the initial window
  // over the smoothed RTT, at the start-up gain.
  double pacing_rate(Duration srtt) const;
  bool in_startup() const { return mode_ == Mode::kStartup; }

  enum class Mode : uint8_t { kStartup, kDrain, kProbeBw, kProbeRtt };
  Mode mode() const { return mode_; }
  double bottleneck_bandwidth() const { return bandwidth_.best(); }  // bytes per second
  std::optional<Duration> min_rtt() const;
  uint64_t inflight_cap() const { return inflight_hi_; }  // UINT64_MAX while no loss round capped it
  uint64_t ack_aggregation() const { return uint64_t(extra_acked_.best()); }  // bytes of room for it
  double rtt_jitter() const { return rtt_jitter_; }  // seconds: the mean change between RTT samples

 private:
  uint64_t min_window() const { return 4 * mss_; }
  // Bytes in flight that fill the pipe at `gain` times the estimated bandwidth-delay product, plus 3
  // packets; the initial window while there is no estimate. (set_window adds the allowances.)
  uint64_t target_inflight(double gain) const;
  void update_round(const AckEvent& e);
  void update_bandwidth(const AckEvent& e);
  void check_full_pipe(const AckEvent& e);
  void update_loss_bound(const AckEvent& e);
  void advance_cycle(const AckEvent& e);
  void update_min_rtt(const AckEvent& e);
  void update_ack_aggregation(const AckEvent& e);
  void update_jitter(const AckEvent& e);
  void set_pacing_rate();
  void set_window(const AckEvent& e);
  void enter_probe_bw(Instant now);

  uint64_t mss_;
  uint64_t initial_window_;
  uint64_t cwnd_;
  Mode mode_ = Mode::kStartup;
  double pacing_gain_;
  double cwnd_gain_;
  double pacing_rate_ = 0;  // bytes per second; 0 until the first bandwidth sample

  WindowedMax bandwidth_;  // bytes per second, over rounds
  uint64_t round_count_ = 0;
  uint64_t next_round_delivered_ = 0;
  bool round_start_ = false;

  Duration min_rtt_ = Duration::max();
  Instant min_rtt_stamp_{};

  // Start-up ends when three rounds in a row did not raise the bandwidth by a quarter.
  bool filled_pipe_ = false;
  double full_bandwidth_ = 0;
  int full_bandwidth_rounds_ = 0;

  int cycle_index_ = 0;
  Instant cycle_stamp_{};

  Instant probe_rtt_done_{};
  bool probe_rtt_round_done_ = false;
  bool probe_rtt_timing_ = false;
  uint64_t prior_cwnd_ = 0;

  // Acknowledgements that come in bursts (delayed, aggregated, or a jittery path delivering late packets
  // together) deliver more in a stretch than the bandwidth estimate explains: the window keeps room for the
  // largest such excess of the last 10 rounds, so the sender is not stalled between the bursts.
  WindowedMax extra_acked_;
  Instant ack_epoch_start_{};
  uint64_t ack_epoch_acked_ = 0;

  // Loss per round: above 2 % of what the round delivered, the bytes in flight are capped at 85 % of
  // what was in flight then, and the cap is raised again by a packet per round without such loss. The
  // cap never goes below the bandwidth-delay product plus the allowances, unless the last lossy round
  // lost more than 20 % and 8 packets (heavy_loss_): then only the bare product bounds it.
  uint64_t round_lost_ = 0;
  uint64_t round_delivered_start_ = 0;
  uint64_t round_max_inflight_ = 0;
  uint64_t inflight_hi_ = UINT64_MAX;
  bool heavy_loss_ = false;
  uint64_t allowances_ = 0;  // the window's room for ack aggregation and jitter, as last computed
  // The mean change between successive RTT samples, in seconds, and the last sample (update_jitter).
  double rtt_jitter_ = 0;
  Duration last_rtt_ = Duration::max();
  uint64_t cycle_seed_;
};

}  // namespace peerlink::protocol
