#include "host_server.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "baselines.hpp"
#include "host_common.hpp"
#include "measure.hpp"
#include "sink_window.hpp"

namespace peerlink::bench {

namespace {

// A listening Host and the application thread that serves it: wait(), run_callbacks(), then on_wake().
class ServedHost {
 public:
  ServedHost(const RoleArgs& args, bool with_poll_group)
      : ServedHost(args, with_poll_group, bench_host_config(args.bind_ip)) {}
  ServedHost(const RoleArgs& args, bool with_poll_group, const HostConfig& config) : host_(config) {
    if (with_poll_group) group_ = host_.create_poll_group();
    ready_ = listen_for_bench(host_, args.bind_ip, group_);
    host_.set_connection_callback([this](const ConnectionEvent& e) {
      if (e.kind == ConnectionEventKind::kClosed) host_.close(e.info.handle);
    });
  }
  ~ServedHost() { stop(); }

  Host& host() { return host_; }
  PollGroupHandle group() const { return group_; }
  const std::string& ready() const { return ready_; }

  void start(std::function<void()> on_wake) {
    thread_ = std::thread([this, on_wake = std::move(on_wake)] {
      while (!stop_.load(std::memory_order_relaxed)) {
        host_.wait(std::chrono::milliseconds(100));
        host_.run_callbacks();
        on_wake();
      }
    });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  Host host_;
  PollGroupHandle group_ = kDefaultPollGroup;
  std::string ready_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void ignore_commands(ControlChannel& channel) {
  while (auto command = channel.next())
    channel.say("error unknown command '" + command->verb + "'");
}

}  // namespace

int run_host_sink(const RoleArgs& args, ControlChannel& channel) {
  SinkCounters counters;
  std::atomic<uint64_t> errors{0};
  uint64_t next_seq = 0;
  std::vector<Message> in;
  constexpr size_t kBatch = 1024;
  ServedHost served(args, true);  // after what its thread uses, so that it stops first
  served.start([&] {
    for (;;) {
      size_t n = served.host().receive_on_poll_group(served.group(), in, kBatch);
      if (n == 0) break;
      uint64_t bytes = 0, bad = 0;
      for (const Message& m : in) {
        bytes += m.size();
        if (m.size() < 8 || (args.size != 0 && m.size() != args.size) || get_sequence(m.data()) != next_seq)
          ++bad;
        next_seq = m.size() >= 8 ? get_sequence(m.data()) + 1 : next_seq + 1;
      }
      in.clear();
      counters.bytes.fetch_add(bytes, std::memory_order_relaxed);
      counters.messages.fetch_add(n, std::memory_order_relaxed);
      if (bad) errors.fetch_add(bad);
      if (n < kBatch) break;
    }
  });
  channel.say(served.ready());
  serve_sink_commands(channel, counters, [&](const ControlMessage& command) {
    if (command.verb != "expect") return false;
    uint64_t count = command.u64("count");
    int64_t deadline = monotonic_ns() + int64_t(command.number("timeout") * 1e9);
    while (counters.messages.load() < count && monotonic_ns() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    channel.say("total messages=" + std::to_string(counters.messages.load()) +
                " errors=" + std::to_string(errors.load()));
    return true;
  });
  return 0;
}

namespace {
int serve_echo(const RoleArgs& args, ControlChannel& channel, const HostConfig& config) {
  std::vector<Message> in;
  ServedHost served(args, false, config);  // after what its thread uses, so that it stops first
  UdpEcho raw(args.bind_ip);
  served.start([&] {
    while (served.host().receive_on_poll_group(kDefaultPollGroup, in) > 0) {
      for (const Message& m : in)
        served.host().send(m.connection(), m.data(), m.size(), send_flags::kReliable | send_flags::kNoNagle);
      in.clear();
    }
  });
  channel.say(served.ready() + " raw_port=" + std::to_string(raw.port()));
  ignore_commands(channel);
  return 0;
}
}  // namespace

int run_host_echo(const RoleArgs& args, ControlChannel& channel) {
  return serve_echo(args, channel, bench_host_config(args.bind_ip));
}

int run_host_echo_service_receives(const RoleArgs& args, ControlChannel& channel) {
  HostConfig config = bench_host_config(args.bind_ip);
  config.receive_on_wait = false;
  return serve_echo(args, channel, config);
}

int run_host_echo_spin(const RoleArgs& args, ControlChannel& channel) {
  HostConfig config = bench_host_config(args.bind_ip);
  config.wait_spin = kWaitSpin;
  return serve_echo(args, channel, config);
}

// The same echo from the service thread: Host::set_message_callback with CallbackThread::kService.
int run_host_echo_callback(const RoleArgs& args, ControlChannel& channel) {
  HostConfig config = bench_host_config(args.bind_ip);
  config.callback_thread = CallbackThread::kService;
  Host host(config);
  std::string ready = listen_for_bench(host, args.bind_ip);
  host.set_connection_callback([&host](const ConnectionEvent& e) {
    if (e.kind == ConnectionEventKind::kClosed) host.close(e.info.handle);
  });
  host.set_message_callback([&host](Message&& m) {
    host.send(m.connection(), m.data(), m.size(), send_flags::kReliable | send_flags::kNoNagle);
  });
  UdpEcho raw(args.bind_ip);
  channel.say(ready + " raw_port=" + std::to_string(raw.port()));
  ignore_commands(channel);
  return 0;
}

namespace {
int serve_connect(const RoleArgs& args, ControlChannel& channel, const HostConfig& config) {
  std::vector<Message> in;
  ServedHost served(args, false, config);  // after what its thread uses, so that it stops first
  UdpEcho raw(args.bind_ip);
  served.start([&] {
    if (served.host().receive_on_poll_group(kDefaultPollGroup, in) == 0) return;
    int64_t delivered = monotonic_ns();
    for (const Message& m : in) {
      char line[96];
      std::snprintf(line, sizeof line, "delivered t_ns=%lld seq=%llu", static_cast<long long>(delivered),
                    static_cast<unsigned long long>(m.size() >= 8 ? get_sequence(m.data()) : 0));
      channel.say(line);
    }
    in.clear();
  });
  channel.say(served.ready() + " raw_port=" + std::to_string(raw.port()));
  ignore_commands(channel);
  return 0;
}
}  // namespace

int run_host_connect(const RoleArgs& args, ControlChannel& channel) {
  return serve_connect(args, channel, bench_host_config(args.bind_ip));
}

int run_host_connect_validating(const RoleArgs& args, ControlChannel& channel) {
  HostConfig config = bench_host_config(args.bind_ip);
  config.address_validation = AddressValidation::kAlways;
  return serve_connect(args, channel, config);
}

int run_host_memory(const RoleArgs& args, ControlChannel& channel) {
  std::vector<Message> in;
  ServedHost served(args, false);  // after what its thread uses, so that it stops first
  served.start([&] {
    while (served.host().receive_on_poll_group(kDefaultPollGroup, in) > 0)
      in.clear();
  });
  channel.say(served.ready());
  while (auto command = channel.next()) {
    if (command->verb != "rss") {
      channel.say("error unknown command '" + command->verb + "'");
      continue;
    }
    size_t connected = 0;
    for (ConnectionHandle c : served.host().connections()) {
      auto info = served.host().connection_info(c);
      if (info && info->state == ConnectionState::kConnected) ++connected;
    }
    channel.say("rss bytes=" + std::to_string(vm_rss_bytes()) + " connected=" + std::to_string(connected));
  }
  return 0;
}

}  // namespace peerlink::bench
