// Congestion control: NewReno (RFC 9002 §7) and CUBIC (RFC 9438), byte-counted, plus a token-bucket pacer.
// The controller only decides how many bytes may be in flight; the Pacer spreads them over the RTT.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/protocol/config.hpp"
#include "transport/protocol/time.hpp"

namespace peerlink::protocol {

class CongestionController {
 public:
  CongestionController(CongestionAlgorithm alg, size_t max_datagram_size, uint32_t initial_window_packets);

  uint64_t window() const { return cwnd_; }
  bool in_slow_start() const { return cwnd_ < ssthresh_; }
  bool in_recovery(Instant sent_time) const { return sent_time <= recovery_start_; }

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
  // When a packet of `size` bytes may leave, given the window and smoothed RTT; now or later.
  Instant next_send_time(Instant now, uint64_t cwnd, Duration srtt, size_t size, bool slow_start);
  void on_sent(Instant now, size_t size, uint64_t cwnd, Duration srtt, bool slow_start);

 private:
  void refill(Instant now, uint64_t cwnd, Duration srtt, bool slow_start);
  double tokens_ = -1;  // bytes; negative = not yet initialised
  Instant last_ = Instant::min();
  size_t burst_packets_ = 10;
  size_t max_datagram_ = 1200;
};

}  // namespace peerlink::protocol
