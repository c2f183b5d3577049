// Whether a connected peer-to-peer connection's path still carries packets, judged from two of the
// connection's counts each time the Host looks (every kPathWatchInterval, Host::Impl::watch_p2p_paths):
// packets received, and packets sent that a working path answers (Connection::answerable_packets_sent;
// an acknowledgement alone asks for none, and an exchange that ended with ours would look like silence).
//
// The path is silent when nothing has been received for a while since the first such packet sent after the
// last one received. The silence counts from that send, not from the receive: an idle connection sends a
// keepalive after seconds of quiet in both directions, and counting from the last receive would call the
// path lost whenever a look fell between the keepalive and its answer (an ICE restart for nothing, one
// keepalive in two on a path whose round trip is half the watch interval).
#pragma once

#include <cstdint>

#include "transport/protocol/time.hpp"

namespace peerlink::host {

class PathWatch {
 public:
  // A look at the counts now. Returns how long the path has been silent: zero while it answers, or while
  // nothing answerable was sent since the last receive; else the time since the look that first saw such
  // a send.
  protocol::Duration look(protocol::Instant now, uint64_t received, uint64_t sent) {
    if (received != seen_rx_ || !looked_) {
      looked_ = true;
      seen_rx_ = received;
      tx_at_rx_ = sent;
      unanswered_since_ = protocol::kNever;
      return protocol::Duration::zero();
    }
    if (sent == tx_at_rx_) return protocol::Duration::zero();  // quiet both ways: nothing to answer yet
    if (unanswered_since_ == protocol::kNever) unanswered_since_ = now;
    return now - unanswered_since_;
  }

  // The path is new (found or restored by ICE): what was sent before is not waited for.
  void restart() { looked_ = false; }

 private:
  bool looked_ = false;
  uint64_t seen_rx_ = 0, tx_at_rx_ = 0;
  protocol::Instant unanswered_since_ = protocol::kNever;
};

}  // namespace peerlink::host
