#include "lossy.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_output.hpp"
#include "host_common.hpp"
#include "measure.hpp"
#include "peerlink/host.hpp"

namespace peerlink::bench {
namespace {

constexpr uint64_t kBottleneck = 10'000'000;  // bytes per second
constexpr size_t kMessageSize = 64 << 10;

struct TransferResult {
  double bytes_per_second = 0;
  uint64_t delivered = 0;
  double seconds = 0;
  bool complete = false;
  uint64_t simulated_dropped = 0;
};

// Two Hosts in this process over loopback: a sends `total` bytes of reliable 64 KiB messages to b, its
// datagrams through `data` and b's (the acknowledgements) through `acks`, both applied by the Hosts'
// own simulation on send. Bytes per second from the first send to the last byte delivered in order, or
// what arrived within max_seconds.
TransferResult transfer(CongestionControl cc, const NetworkImpairment& data, const NetworkImpairment& acks,
                        uint64_t total, double max_seconds, uint64_t seed) {
  HostConfig ca = bench_host_config("127.0.0.1"), cb = bench_host_config("127.0.0.1");
  ca.congestion_control = cb.congestion_control = cc;
  ca.log_level = cb.log_level = LogLevel::kError;  // the simulation warns when a Host starts
  ca.simulation.send = data;
  ca.simulation.seed = seed;
  cb.simulation.send = acks;
  cb.simulation.seed = seed + 1;
  cb.callback_thread = CallbackThread::kService;

  std::atomic<uint64_t> bytes{0}, next{1};
  std::atomic<bool> disorder{false};
  std::atomic<int64_t> last_ns{0};
  Host b(std::move(cb));
  ignore_events(b);
  b.set_message_callback([&](Message&& m) {
    if (m.number() != next.fetch_add(1)) disorder = true;
    bytes += m.size();
    last_ns = monotonic_ns();
  });
  Result<ListenSocketHandle> l = b.listen(0);
  if (!l) throw std::runtime_error("lossy: listen: " + l.error().message);
  const Address to = *Address::parse("127.0.0.1:" + std::to_string(b.listen_address(*l)->port()));
  Host a(std::move(ca));
  ignore_events(a);
  const ConnectionHandle c = connect_and_wait(a, to, b.identity().public_key(), 10);

  std::vector<uint8_t> payload(kMessageSize, 0x3c);
  uint64_t queued = 0;
  const int64_t t0 = monotonic_ns();
  const int64_t deadline = t0 + int64_t(max_seconds * 1e9);
  while (bytes.load() < total && monotonic_ns() < deadline) {
    auto st = a.status(c);
    if (!st || st->state == ConnectionState::kClosed)
      throw std::runtime_error("lossy: the connection ended during the transfer");
    if (queued < total && st->queued_bytes < kKeepQueued) {
      const size_t n = size_t(std::min<uint64_t>(kMessageSize, total - queued));
      if (a.send(c, payload.data(), n) == SendResult::kOk) {
        queued += n;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    a.run_callbacks();
  }
  if (disorder) throw std::runtime_error("lossy: messages out of order");
  TransferResult r;
  r.delivered = bytes.load();
  r.complete = r.delivered >= total;
  const int64_t end = r.complete ? last_ns.load() : monotonic_ns();
  r.seconds = seconds_between(t0, end);
  r.bytes_per_second = r.seconds > 0 ? double(r.delivered) / r.seconds : 0;
  r.simulated_dropped = a.counters().simulated_dropped;
  return r;
}

// runs, when given: every run's MB/s, r being the median one.
void print(const std::string& name, const TransferResult& r, double baseline,
           const std::string& baseline_name, double target_ratio, const std::string& runs = {}) {
  Figure f{name, r.bytes_per_second / 1e6, "MB/s", {}};
  if (!runs.empty()) f.add("metric", "median of the runs with different seeds").add("runs_MBps", runs);
  f.add("delivered_MB", double(r.delivered) / 1e6)
      .add("seconds", r.seconds)
      .add("complete", r.complete ? "yes" : "no")
      .add_count("simulated_dropped", r.simulated_dropped);
  if (target_ratio > 0) f.add("target_ratio", target_ratio);
  f.compare(baseline_name, baseline / 1e6).print();
}

void run_one(CongestionControl cc, const LossyBenchOptions& o) {
  const std::string prefix = std::string("lossy-") + congestion_name(cc) + "/";
  // The path of the issue: a 10 MB/s bottleneck with a drop-tail queue and 40 ms of round trip (20 ms each
  // way), random loss on the data direction.
  NetworkImpairment link;
  link.rate_limit_bytes_per_second = kBottleneck;
  link.lag = std::chrono::milliseconds(20);
  NetworkImpairment back;
  back.lag = std::chrono::milliseconds(20);
  // Which packets the loss takes depends on the seed, and at 5 % so does the figure (7.0-7.7 MB/s with
  // BBR over five seeds): BBR runs each case with five seeds and prints the median; CUBIC, which needs
  // the whole max_seconds at 1 and 5 %, with one.
  const std::vector<uint64_t> seeds = cc == CongestionControl::kBbr
                                          ? std::vector<uint64_t>{11, 111, 211, 311, 411}
                                          : std::vector<uint64_t>{11};
  for (double loss : {0.0, 1.0, 5.0}) {
    NetworkImpairment d = link;
    d.loss_percent = loss;
    std::vector<TransferResult> runs;
    std::vector<double> mb_per_s;
    for (uint64_t seed : seeds) {
      runs.push_back(transfer(cc, d, back, o.bytes, o.max_seconds, seed));
      mb_per_s.push_back(runs.back().bytes_per_second / 1e6);
    }
    std::sort(runs.begin(), runs.end(), [](const TransferResult& x, const TransferResult& y) {
      return x.bytes_per_second < y.bytes_per_second;
    });
    const std::string name = prefix + "loss-" + std::to_string(int(loss)) + "pct-10MBps-40ms";
    print(name, runs[runs.size() / 2], double(kBottleneck), "bottleneck", loss == 1.0 ? 0.70 : 0,
          runs.size() > 1 ? runs_text(mb_per_s, 2) : std::string());
  }

  // Jitter and reordering on a low-RTT path: the same bottleneck with no added lag, then 3 ms of jitter
  // plus 5 % reordering and 5 % duplication on the data direction; the baseline is the jitter-free run.
  NetworkImpairment plain;
  plain.rate_limit_bytes_per_second = kBottleneck;
  const TransferResult smooth = transfer(cc, plain, NetworkImpairment{}, o.bytes, o.max_seconds, 13);
  print(prefix + "jitter-free-10MBps", smooth, double(kBottleneck), "bottleneck", 0);
  NetworkImpairment jittery = plain;
  jittery.jitter = std::chrono::milliseconds(3);
  jittery.reorder_percent = 5;
  jittery.duplicate_percent = 5;
  const TransferResult j = transfer(cc, jittery, NetworkImpairment{}, o.bytes, o.max_seconds, 13);
  print(prefix + "jitter-3ms-reorder-5pct-dup-5pct", j, smooth.bytes_per_second, "jitter-free-same-run",
        0.50);
}

}  // namespace

void run_lossy(const LossyBenchOptions& o) {
  // BBR, the default, then CUBIC (the default before it) on the same paths and seeds.
  for (CongestionControl cc : {CongestionControl::kBbr, CongestionControl::kCubic})
    run_one(cc, o);
}

}  // namespace peerlink::bench
