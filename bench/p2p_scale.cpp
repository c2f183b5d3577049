#include "p2p_scale.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "bench_output.hpp"
#include "measure.hpp"
#include "peerlink/host.hpp"
#include "peerlink/testkit/in_process_signaling.hpp"

namespace peerlink::bench {
namespace {

using Clock = std::chrono::steady_clock;
using testkit::SignalingHub;

size_t open_descriptors() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// n connections from Host a to Host b at one moment: peer to peer, or direct UDP to a listen socket.
ScaleOutcome connect_many(size_t n, bool p2p) {
  auto hub = std::make_shared<SignalingHub>();
  ScaleTally tally;
  auto make = [&](const char* name, bool counts) {
    HostConfig c;
    c.log_level = LogLevel::kError;
    c.callback_thread = CallbackThread::kService;
    c.signaling.push_back(hub->plugin(name));
    c.ice.interfaces_allow = {"lo"};
    auto h = std::make_unique<Host>(std::move(c));
    if (counts) tally.count(*h);
    return h;
  };
  std::unique_ptr<Host> b = make("b", false), a = make("a", true);
  Address target;
  if (p2p) {
    if (!b->listen_p2p()) throw std::runtime_error("listen_p2p failed");
  } else {
    Result<ListenSocketHandle> l = b->listen(*Address::parse("127.0.0.1:0"));
    if (!l) throw std::runtime_error("listen: " + l.error().message);
    target = *b->listen_address(*l);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both idle
  ScaleOutcome o = measure_connect_many(
      n, tally, [&] { return p2p ? a->connect(SignalingHub::id("b")) : a->connect(target); });
  o.ice_restarts = a->counters().ice_restarts + b->counters().ice_restarts;
  return o;
}

}  // namespace

void ScaleTally::fail(const std::string& why) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (first_failure_.empty()) {
    first_failure_ = why;
    for (char& ch : first_failure_)  // printed as a JSON string
      if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) ch = ' ';
  }
  ++failed_;
}

void ScaleTally::count(Host& host) {
  host.set_connection_callback([this](const ConnectionEvent& e) {
    if (e.kind == ConnectionEventKind::kConnected) ++connected_;
    if (e.kind == ConnectionEventKind::kClosed) fail(e.info.end_debug);
  });
}

std::string ScaleTally::first_failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return first_failure_;
}

ScaleOutcome measure_connect_many(size_t n, ScaleTally& tally,
                                  const std::function<Result<ConnectionHandle>()>& connect) {
  const size_t rss0 = vm_rss_bytes(), fds0 = open_descriptors();
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    Result<ConnectionHandle> r = connect();
    if (!r) tally.fail(r.error().message);
  }
  while (tally.connected() + tally.failed() < n && Clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ScaleOutcome o;
  o.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  o.connected = tally.connected();
  o.failed = n - o.connected;
  o.first_failure = tally.first_failure();
  if (o.connected + tally.failed() < n && o.first_failure.empty())
    o.first_failure = "not all done within 120 s";
  const double sides = 2.0 * double(n);
  o.rss_per_side = (double(vm_rss_bytes()) - double(rss0)) / sides;
  o.fds_per_side = (double(open_descriptors()) - double(fds0)) / sides;
  return o;
}

void raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

void print_scale(const std::string& scenario, size_t n, const ScaleOutcome& p2p, const ScaleOutcome& baseline,
                 const std::string& signaling, const std::string& baseline_name) {
  Figure f{scenario + "/" + std::to_string(n), p2p.seconds, "s", {}};
  f.add("metric", "time until all connected")
      .add_count("connections", n)
      .add_count("connected", p2p.connected)
      .add_count("failed", p2p.failed)
      .add("ms_per_connection", p2p.seconds * 1000 / double(n))
      .add("rss_kib_per_connection_per_side", p2p.rss_per_side / 1024)
      .add("fds_per_connection_per_side", p2p.fds_per_side)
      .add_count("ice_restarts", p2p.ice_restarts)
      .add("baseline_rss_kib_per_connection_per_side", baseline.rss_per_side / 1024)
      .add("baseline_fds_per_connection_per_side", baseline.fds_per_side)
      .add("signaling", signaling)
      .add("target", "1000 within 10 s, <= 64 KiB per connection");
  if (!p2p.first_failure.empty()) f.add("first_failure", p2p.first_failure);
  f.compare(baseline_name, baseline.seconds).print();
}

bool run_p2p_scale(const P2PScaleOptions& opts) {
  raise_descriptor_limit();
  bool ok = true;
  for (size_t n : opts.connections) {
    ScaleOutcome direct, p2p;
    try {
      direct = connect_many(n, false);
      p2p = connect_many(n, true);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "peerlink-bench: p2p-scale: %s\n", e.what());
      return false;
    }
    print_scale("p2p-scale", n, p2p, direct, "in-process", "the same connections over direct UDP");
    ok = ok && p2p.connected == n;
  }
  return ok;
}

}  // namespace peerlink::bench
