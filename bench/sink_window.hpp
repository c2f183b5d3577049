// The measuring window of a receiving server: the benchmark sends through a warm-up, then tells the child
// "mark", sends on for the measured seconds and tells it "stop"; the child answers with what arrived between
// the two, timed by its own clock. Goodput is what the receiver got, whatever the sender pushed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "server_roles.hpp"
#include "two_process.hpp"

namespace peerlink::bench {

// --- child side ---

// What a receiving role has received so far; its receive loop updates them.
struct SinkCounters {
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> messages{0};
};

// Answers "mark" and "stop" (with "result bytes= messages= seconds=") until end of input. Other commands go
// to `other`, which returns false for ones it does not know (they are answered with an error line).
void serve_sink_commands(ControlChannel& channel, const SinkCounters& counters,
                         const std::function<bool(const ControlMessage&)>& other = {});

// --- benchmark side ---

struct SinkResult {
  uint64_t bytes = 0;
  uint64_t messages = 0;
  double seconds = 0;

  double megabytes_per_second() const { return seconds > 0 ? double(bytes) / seconds / 1e6 : 0; }
  double messages_per_second() const { return seconds > 0 ? double(messages) / seconds : 0; }
};

class SinkWindow {
 public:
  // The warm-up starts now; the measured window is `seconds` long after it.
  SinkWindow(ServerProcess& server, double seconds);
  // Call from the send loop: sends "mark" when the warm-up ends; false once the window is over.
  bool running();
  // Sends "stop" (if running() has not seen the end yet, the window ends now) and returns the result.
  SinkResult finish();

 private:
  ServerProcess& server_;
  int64_t mark_ns_;
  int64_t end_ns_;
  bool marked_ = false;
};

}  // namespace peerlink::bench
