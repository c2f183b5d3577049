// Time in the sans-I/O core: callers pass `now` in; nothing in the protocol reads a clock. The io layer maps
// std::chrono::steady_clock onto Instant, the simulator advances its own.
#pragma once

#include <chrono>
#include <cstdint>

namespace peerlink::protocol {

struct ProtocolClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<ProtocolClock>;
  static constexpr bool is_steady = true;
};

using Duration = std::chrono::nanoseconds;
using Instant = ProtocolClock::time_point;

inline constexpr Instant kNever = Instant::max();

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

inline int64_t to_us(Duration d) {
  return std::chrono::duration_cast<microseconds>(d).count();
}

}  // namespace peerlink::protocol
