// rtt and connect: one message at a time, timed from this process (and, for connect, by the server's
// CLOCK_MONOTONIC timestamp of delivery, the same clock as ours).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "baselines.hpp"
#include "bench_output.hpp"
#include "host_common.hpp"
#include "host_scenarios.hpp"
#include "measure.hpp"

namespace peerlink::bench {

namespace {

constexpr size_t kPingSize = 32;
constexpr size_t kMaxTrips = 20000;
constexpr uint64_t kWarmupTrips = 200;
constexpr uint32_t kPingFlags = send_flags::kReliable | send_flags::kNoNagle;

uint16_t raw_port(const ServerProcess& server) {
  return uint16_t(server.ready().u64("raw_port"));
}

// Like measure_udp_ping_pong, through a Host connection to a host-echo server: the reply is awaited with
// Host::wait() and read with Host::receive(), as an application would.
PingPongResult measure_host_ping_pong(const NetworkPath& path, const ServerProcess& server, size_t size,
                                      size_t max_trips, double seconds, const HostConfig& config) {
  Host host(config);
  ignore_events(host);
  ConnectionHandle c = connect_and_wait(host, server_address(path, server.ready()),
                                        key_from_hex(server.ready().field("key")), 10);
  std::vector<uint8_t> out(std::max<size_t>(size, 8));
  std::vector<Message> in;
  PingPongResult result;
  const int64_t start_ns = monotonic_ns(), start_cpu = process_cpu_ns();
  int64_t end_ns = start_ns + int64_t(seconds * 1e9);
  for (uint64_t seq = 1; result.rtt_us.size() < max_trips && monotonic_ns() < end_ns; ++seq) {
    put_sequence(out.data(), seq);
    int64_t t0 = monotonic_ns();
    SendResult sent = host.send(c, out.data(), size, kPingFlags);
    if (sent != SendResult::kOk) throw std::runtime_error(std::string("send: ") + to_string(sent));
    int64_t give_up = t0 + 1000000000;
    bool answered = false;
    while (!answered) {
      host.wait(std::chrono::milliseconds(100));
      host.receive(c, in, 16);
      for (const Message& m : in)
        answered |= m.size() >= 8 && get_sequence(m.data()) == seq;
      in.clear();
      if (!answered && monotonic_ns() > give_up) {
        ++result.lost;
        break;
      }
    }
    if (answered && seq > kWarmupTrips) result.rtt_us.push_back(double(monotonic_ns() - t0) / 1e3);
    host.run_callbacks();
  }
  result.cpu_busy = double(process_cpu_ns() - start_cpu) / double(monotonic_ns() - start_ns);
  // Idle: the same wait() loop with nothing to wait for (what an opt-in spin costs a quiet application).
  const int64_t idle_ns = monotonic_ns(), idle_cpu = process_cpu_ns();
  while (monotonic_ns() - idle_ns < int64_t(std::min(1.0, seconds) * 1e9)) {
    host.wait(std::chrono::milliseconds(100));
    host.receive(c, in, 16);
    in.clear();
  }
  result.cpu_idle = double(process_cpu_ns() - idle_cpu) / double(monotonic_ns() - idle_ns);
  return result;
}

// The same ping-pong run entirely on the two Hosts' service threads: each side's message callback
// (CallbackThread::kService) answers or times the message and sends the next, with no hand-off to an
// application thread. This is the latency the Host itself adds.
PingPongResult measure_host_ping_pong_callbacks(const NetworkPath& path, const ServerProcess& server,
                                                size_t size, size_t max_trips, double seconds) {
  HostConfig config = bench_host_config(path.client_ip);
  config.callback_thread = CallbackThread::kService;
  Host host(config);
  ignore_events(host);
  ConnectionHandle c = connect_and_wait(host, server_address(path, server.ready()),
                                        key_from_hex(server.ready().field("key")), 10);
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  PingPongResult result;
  std::vector<uint8_t> out(std::max<size_t>(size, 8));
  uint64_t seq = 1;
  int64_t t0 = 0;
  int64_t end_ns = monotonic_ns() + int64_t(seconds * 1e9);
  SendResult failed = SendResult::kOk;
  auto send_next = [&] {
    put_sequence(out.data(), seq);
    t0 = monotonic_ns();
    return host.send(c, out.data(), size, kPingFlags);
  };
  host.set_message_callback([&](Message&& m) {  // callbacks must not throw: errors end the run
    if (m.size() < 8 || get_sequence(m.data()) != seq) return;
    int64_t now = monotonic_ns();
    if (seq > kWarmupTrips) result.rtt_us.push_back(double(now - t0) / 1e3);
    ++seq;
    if (result.rtt_us.size() < max_trips && now < end_ns) {
      SendResult sent = send_next();
      if (sent == SendResult::kOk) return;
      failed = sent;
    }
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
    done_cv.notify_all();
  });
  SendResult first = send_next();
  if (first != SendResult::kOk) throw std::runtime_error(std::string("send: ") + to_string(first));
  std::unique_lock<std::mutex> lock(mutex);
  bool finished = done_cv.wait_for(lock, std::chrono::duration<double>(seconds + 10), [&] { return done; });
  lock.unlock();
  host.set_message_callback({});
  if (!finished) throw std::runtime_error("callback ping-pong stalled at round trip " + std::to_string(seq));
  if (failed != SendResult::kOk) throw std::runtime_error(std::string("send: ") + to_string(failed));
  return result;
}

void print_rtt(const HostBenchOptions& o, PingPongResult& raw, PingPongResult& host, const char* mode) {
  size_t raw_trips = raw.rtt_us.size(), host_trips = host.rtt_us.size();
  double raw_p50 = percentile(raw.rtt_us, 0.5), raw_p99 = percentile(raw.rtt_us, 0.99);
  double p50 = percentile(host.rtt_us, 0.5), p99 = percentile(host.rtt_us, 0.99);
  struct Line {
    const char* metric;
    double value, baseline, target;
  };
  for (const Line& l : {Line{"p50", p50, raw_p50, raw_p50 + 25}, Line{"p99", p99, raw_p99, 2 * raw_p99}}) {
    Figure f{"rtt", l.value, "us", {}};
    f.add("metric", l.metric)
        .add("receive", mode)
        .compare(std::string("raw UDP ping-pong ") + l.metric, l.baseline)
        .add("path", o.path.name)
        .add("target", l.target)
        .add_count("message_size", kPingSize)
        .add_count("round_trips", host_trips)
        .add_count("baseline_round_trips", raw_trips)
        .add_count("unanswered_1s", host.lost)
        .add_count("baseline_lost", raw.lost);
    if (host.cpu_busy >= 0)
      f.add("client_cpu_cores_pinging", host.cpu_busy).add("client_cpu_cores_idle", host.cpu_idle);
    f.print();
  }
}

}  // namespace

void run_rtt(const HostBenchOptions& o) {
  // The reply awaited on the application thread, as most games do: with the defaults (wait() reads the
  // socket: HostConfig::receive_on_wait), with receive_on_wait off on both sides (the service thread
  // receives, then wakes the waiter), and with HostConfig::wait_spin on both sides (busy polling).
  struct Variant {
    const char* role;
    const char* mode;
    HostConfig client;
  };
  HostConfig service_receives = bench_host_config(o.path.client_ip),
             spin = bench_host_config(o.path.client_ip);
  service_receives.receive_on_wait = false;
  spin.wait_spin = kWaitSpin;
  const Variant variants[] = {
      {"host-echo", "application thread: wait() + receive(), defaults", bench_host_config(o.path.client_ip)},
      {"host-echo-service-receives",
       "application thread: wait() + receive(), receive_on_wait off on both sides", service_receives},
      {"host-echo-spin", "application thread: wait() + receive(), wait_spin 200 us on both sides", spin},
  };
  for (const Variant& v : variants) {
    ServerProcess server(o.path, v.role, {}, 2 * o.seconds + 120);
    PingPongResult raw = measure_udp_ping_pong(o.path, raw_port(server), kPingSize, kMaxTrips, o.seconds);
    PingPongResult host = measure_host_ping_pong(o.path, server, kPingSize, kMaxTrips, o.seconds, v.client);
    if (raw.rtt_us.empty() || host.rtt_us.empty()) throw std::runtime_error("no round trip completed");
    print_rtt(o, raw, host, v.mode);
  }

  ServerProcess callback_server(o.path, "host-echo-callback", {}, 2 * o.seconds + 120);
  PingPongResult raw2 =
      measure_udp_ping_pong(o.path, raw_port(callback_server), kPingSize, kMaxTrips, o.seconds);
  PingPongResult callbacks =
      measure_host_ping_pong_callbacks(o.path, callback_server, kPingSize, kMaxTrips, o.seconds);
  if (raw2.rtt_us.empty() || callbacks.rtt_us.empty()) throw std::runtime_error("no round trip completed");
  print_rtt(o, raw2, callbacks, "service thread: message callback");
}

namespace {

// connect() to the first message delivered at a fresh server of `role`, for --samples fresh client Hosts.
std::vector<double> measure_connects(const HostBenchOptions& o, const char* role, double* raw_rtt_p50) {
  // Each trial takes a few milliseconds; the give-up bound below ends the run before the server's lifetime.
  const double bound = std::max(30.0, o.seconds * 10 + 0.05 * double(o.connect_samples));
  ServerProcess server(o.path, role, {}, bound + 60);
  if (raw_rtt_p50) {
    PingPongResult raw =
        measure_udp_ping_pong(o.path, raw_port(server), kPingSize, 2000, std::min(1.0, o.seconds));
    if (raw.rtt_us.empty()) throw std::runtime_error("no raw UDP round trip completed");
    *raw_rtt_p50 = percentile(raw.rtt_us, 0.5);
  }
  Address to = server_address(o.path, server.ready());
  PublicKey key = key_from_hex(server.ready().field("key"));
  std::vector<double> samples;
  const int64_t give_up = monotonic_ns() + int64_t(bound * 1e9);
  for (size_t trial = 0; trial < o.connect_samples && monotonic_ns() < give_up; ++trial) {
    Host host(bench_host_config(o.path.client_ip));  // a fresh client: new identity, new socket
    ignore_events(host);
    uint8_t message[kPingSize] = {};
    put_sequence(message, uint64_t(trial));
    ConnectOptions options;
    options.expected_key = key;
    int64_t t0 = monotonic_ns();
    Result<ConnectionHandle> connecting = host.connect(to, options);
    if (!connecting) throw std::runtime_error("connect: " + connecting.error().message);
    const ConnectionHandle c = *connecting;
    SendResult sent = host.send(c, message, sizeof message, kPingFlags);
    if (sent != SendResult::kOk)
      throw std::runtime_error(std::string("send while connecting: ") + to_string(sent));
    ControlMessage delivered = server.expect("delivered", 11.0);
    if (delivered.u64("seq") != uint64_t(trial))
      throw std::runtime_error("the server delivered message " + delivered.field("seq") + " in trial " +
                               std::to_string(trial));
    samples.push_back(double(int64_t(delivered.u64("t_ns")) - t0) / 1e3);
  }
  return samples;
}

}  // namespace

void run_connect(const HostBenchOptions& o) {
  double raw_rtt = 0;
  std::vector<double> defaults = measure_connects(o, "host-connect", &raw_rtt);
  // The same with a server that always asks for an address-validation cookie: one more round trip.
  std::vector<double> validating = measure_connects(o, "host-connect-validating", nullptr);
  const double baseline = 2 * raw_rtt + 1000;
  for (auto& [samples, validation] : {std::pair{&defaults, "under load (default): no cookie here"},
                                      std::pair{&validating, "always: one more round trip for the cookie"}}) {
    for (const char* metric : {"p50", "p99"}) {
      double value = percentile(*samples, metric[1] == '5' ? 0.5 : 0.99);
      Figure f{"connect", value, "us", {}};
      f.add("metric", metric)
          .add("address_validation", validation)
          .compare("2 x raw UDP RTT p50 + 1 ms", baseline)
          .add("path", o.path.name)
          .add("target", baseline)
          .add("raw_rtt_p50_us", raw_rtt)
          .add_count("trials", samples->size());
      f.print();
    }
  }
}

}  // namespace peerlink::bench
