// The child side of the two-process scenarios: `peerlink-bench --role <role> --bind <ip> --lifetime <s>
// [--size <bytes>]` runs one server role, reports "ready ..." on stdout, then obeys commands on stdin until
// end of input (the benchmark closed the pipe) or its lifetime alarm.
//
//   udp-sink, tcp-sink                   raw kernel baselines (baselines.cpp)
//   host-sink, host-echo, host-connect,  peerlink::Host servers (host_server.cpp)
//   host-memory
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>

#include "control_protocol.hpp"

namespace peerlink::bench {

struct RoleArgs {
  std::string role;
  std::string bind_ip;  // the address to serve on
  size_t size = 0;      // the message or datagram size the role expects, if it checks one
};

// The child's end of the control channel: commands on stdin, reports on stdout (so nothing else may print
// there). say() may be called from any thread.
class ControlChannel {
 public:
  // The next command; nullopt at end of input, when the benchmark is done with us.
  std::optional<ControlMessage> next();
  void say(const std::string& line);

 private:
  LineReader reader_{0};
  std::mutex write_mutex_;
};

// Runs the role named on the command line (argv[1] is "--role"); returns the exit status.
int run_server_role(int argc, char** argv);

}  // namespace peerlink::bench
