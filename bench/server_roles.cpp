#include "server_roles.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <functional>
#include <map>

#include "baselines.hpp"
#include "host_server.hpp"

namespace peerlink::bench {

std::optional<ControlMessage> ControlChannel::next() {
  auto line = reader_.read_line(-1);
  if (!line) return std::nullopt;
  return ControlMessage::parse(*line);
}

void ControlChannel::say(const std::string& line) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  write_line(STDOUT_FILENO, line);
}

int run_server_role(int argc, char** argv) {
  RoleArgs args;
  unsigned lifetime = 120;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i], value = argv[i + 1];
    if (key == "--role") {
      args.role = value;
    } else if (key == "--bind") {
      args.bind_ip = value;
    } else if (key == "--lifetime") {
      lifetime = unsigned(std::atoi(value.c_str()));
    } else if (key == "--size") {
      args.size = size_t(std::atoll(value.c_str()));
    }
  }
  // "plb-host-sink" rather than "exe" in ps and top.
  std::string name = "plb-" + args.role;
  prctl(PR_SET_NAME, name.c_str());
  // Bounded whatever happens to the benchmark: SIGALRM's default action ends us.
  alarm(lifetime == 0 ? 1 : lifetime);
  ControlChannel channel;
  static const std::map<std::string, std::function<int(const RoleArgs&, ControlChannel&)>> roles = {
      {"udp-sink", run_udp_sink},
      {"tcp-sink", run_tcp_sink},
      {"host-sink", run_host_sink},
      {"host-echo", run_host_echo},
      {"host-echo-service-receives", run_host_echo_service_receives},
      {"host-echo-spin", run_host_echo_spin},
      {"host-echo-callback", run_host_echo_callback},
      {"host-connect", run_host_connect},
      {"host-connect-validating", run_host_connect_validating},
      {"host-memory", run_host_memory},
  };
  auto it = roles.find(args.role);
  if (it == roles.end() || args.bind_ip.empty()) {
    channel.say("error unknown role '" + args.role + "' or no --bind");
    return 2;
  }
  try {
    return it->second(args, channel);
  } catch (const std::exception& e) {
    channel.say(std::string("error ") + e.what());
    return 1;
  }
}

}  // namespace peerlink::bench
