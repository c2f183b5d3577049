#include "sink_window.hpp"

#include <cstdio>

#include "measure.hpp"

namespace peerlink::bench {

void serve_sink_commands(ControlChannel& channel, const SinkCounters& counters,
                         const std::function<bool(const ControlMessage&)>& other) {
  uint64_t mark_bytes = 0, mark_messages = 0;
  int64_t mark_ns = monotonic_ns();
  while (auto command = channel.next()) {
    if (command->verb == "mark") {
      mark_ns = monotonic_ns();
      mark_bytes = counters.bytes.load();
      mark_messages = counters.messages.load();
    } else if (command->verb == "stop") {
      int64_t stop_ns = monotonic_ns();
      uint64_t bytes = counters.bytes.load(), messages = counters.messages.load();
      char line[160];
      std::snprintf(line, sizeof line, "result bytes=%llu messages=%llu seconds=%.6f",
                    static_cast<unsigned long long>(bytes - mark_bytes),
                    static_cast<unsigned long long>(messages - mark_messages),
                    seconds_between(mark_ns, stop_ns));
      channel.say(line);
    } else if (!other || !other(*command)) {
      channel.say("error unknown command '" + command->verb + "'");
    }
  }
}

SinkWindow::SinkWindow(ServerProcess& server, double seconds) : server_(server) {
  int64_t now = monotonic_ns();
  mark_ns_ = now + int64_t(warmup_seconds(seconds) * 1e9);
  end_ns_ = mark_ns_ + int64_t(seconds * 1e9);
}

bool SinkWindow::running() {
  int64_t now = monotonic_ns();
  if (!marked_ && now >= mark_ns_) {
    server_.send("mark");
    marked_ = true;
  }
  return now < end_ns_;
}

SinkResult SinkWindow::finish() {
  if (!marked_) server_.send("mark");
  marked_ = true;
  server_.send("stop");
  ControlMessage m = server_.expect("result", 10.0);
  SinkResult r;
  r.bytes = m.u64("bytes");
  r.messages = m.u64("messages");
  r.seconds = m.number("seconds");
  return r;
}

}  // namespace peerlink::bench
