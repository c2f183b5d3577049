// Congestion control: NewReno (RFC 9002 §7) and CUBIC (RFC 9438), byte-counted, and BBR (bbr.hpp), plus a
// token-bucket pacer. The controller decides how many bytes may be in flight and how fast they may leave;
// the Pacer spreads them out at that rate.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/protocol/bbr.hpp"
#include "transport/protocol/config.hpp"
#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

class CongestionController {
 public:
  // seed: BBR's spread of its probing phases (flows started together should not probe in step).
  CongestionController(CongestionAlgorithm alg, size_t max_datagram_size, uint32_t initial_window_packets,
                       uint64_t seed = 0);

  CongestionAlgorithm algorithm() const { return alg_; }
  uint64_t window() const { return alg_ == CongestionAlgorithm::kBbr ? bbr_.window() : cwnd_; }
  bool in_slow_start() const {
    return alg_ == CongestionAlgorithm::kBbr ? bbr_.in_startup() : cwnd_ < ssthresh_;
  }
  bool in_recovery(Instant sent_time) const { return sent_time <= recovery_start_; }
  // Bytes per second the Pacer lets out: BBR's pacing rate; for the window-based controllers the window per
  // smoothed RTT, doubled in slow start and 1.25x after (so the window, not the pacer, is the limit).
  double pacing_rate(Duration srtt) const;
  // Once per acknowledgement, after on_ack() for each packet it covered: what BBR's model is built from.
  void on_ack_event(const AckEvent& e);
  const Bbr& bbr() const { return bbr_; }

  void set_max_datagram_size(size_t size);
  // bytes_in_flight_before: in flight when the ack arrived, to skip growth while application-limited.
  void on_ack(uint64_t bytes, Instant sent_time, Instant now, Duration min_rtt,
              uint64_t bytes_in_flight_before);
  // A packet sent at sent_time was lost (or ECN-marked): one reduction per round trip.
  void on_congestion_event(Instant sent_time, Instant now);
  void on_persistent_congestion();
  // The losses behind the last reduction were all spurious (reordering): restore the window from before it.
  void undo_last_reduction();

 private:
  uint64_t min_window() const { return 2 * mss_; }
  void cubic_on_ack(uint64_t bytes, Instant now, Duration min_rtt);

  CongestionAlgorithm alg_;
  Bbr bbr_;
  uint64_t mss_;
  uint64_t cwnd_;
  uint64_t ssthresh_ = UINT64_MAX;
  Instant recovery_start_ = Instant::min();
  uint64_t reno_acked_ = 0;  // bytes acked toward the next +1 MSS in congestion avoidance
  // CUBIC state, in bytes and seconds.
  double w_max_ = 0;
  double k_ = 0;
  double w_est_ = 0;
  Instant epoch_start_ = Instant::min();
  // State before the last reduction, for undo_last_reduction.
  struct Saved {
    uint64_t cwnd, ssthresh;
    double w_max, k, w_est;
    Instant epoch_start, recovery_start;
  };
  Saved before_reduction_{};
  bool can_undo_ = false;
};

class Pacer {
 public:
  // When a packet of `size` bytes may leave at `rate` bytes per second; now or later.
  Instant next_send_time(Instant now, double rate, size_t size);
  void on_sent(Instant now, size_t size, double rate);

 private:
  void refill(Instant now, double rate);
  // A token bucket in bytes, refilled at the pacing rate; holds burst_packets_ datagrams, or at high rates
  // up to 1 ms of the rate (at most 1 MiB).
  double tokens_ = 0;  // bytes; may dip below 0 by one packet (a packet sent without waiting)
  Instant last_ = Instant::min();
  size_t burst_packets_ = 10;
  size_t max_datagram_ = 1200;
};

}  // namespace peerlink::protocol
