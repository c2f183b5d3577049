#include "tcp_share.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_output.hpp"
#include "host_common.hpp"
#include "measure.hpp"
#include "netns.hpp"
#include "peerlink/host.hpp"
#include "raw_socket.hpp"

namespace peerlink::bench {
namespace {

constexpr double kLinkBytesPerSecond = 10e6;  // tbf rate 80mbit

void run_tc(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"tc"};
  all.insert(all.end(), args.begin(), args.end());
  const std::string why = run_program(all);
  if (!why.empty()) throw std::runtime_error(why);
}

// Counts what arrives in the measured window.
struct Meter {
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> counting{false};
  void add(uint64_t n) {
    if (counting.load(std::memory_order_relaxed)) bytes.fetch_add(n, std::memory_order_relaxed);
  }
};

// A kernel TCP stream from namespace a to b, as fast as it goes, until stop.
class TcpFlow {
 public:
  TcpFlow(const NamespacePair& pair, const std::string& congestion, Meter& meter) : meter_(meter) {
    {
      ScopedNamespace in_b(pair.server_fd());
      listener_ = open_bound_socket(SOCK_STREAM, NamespacePair::kServerIp);
      if (listen(listener_.get(), 1) != 0) throw std::runtime_error("tcp listen failed");
    }
    const uint16_t port = local_port(listener_.get());
    {
      ScopedNamespace in_a(pair.client_fd());
      client_ = open_bound_socket(SOCK_STREAM, NamespacePair::kClientIp);
    }
    if (setsockopt(client_.get(), IPPROTO_TCP, TCP_CONGESTION, congestion.data(),
                   socklen_t(congestion.size())) != 0)
      throw std::runtime_error("TCP_CONGESTION " + congestion + ": " + std::strerror(errno));
    set_timeout(listener_.get(), SO_RCVTIMEO, 5000);
    connect_to(client_.get(), NamespacePair::kServerIp, port);
    server_ = Fd(accept(listener_.get(), nullptr, nullptr));
    if (server_.get() < 0) throw std::runtime_error("tcp accept failed");
    set_timeout(server_.get(), SO_RCVTIMEO, 100);
    set_timeout(client_.get(), SO_SNDTIMEO, 100);
    reader_ = std::thread([this] {
      std::vector<uint8_t> buf(256 << 10);
      while (!stop_.load()) {
        ssize_t n = recv(server_.get(), buf.data(), buf.size(), 0);
        if (n > 0) meter_.add(uint64_t(n));
        if (n == 0) break;
      }
    });
  }
  void start() {
    writer_ = std::thread([this] {
      std::vector<uint8_t> buf(64 << 10, 0x7e);
      while (!stop_.load())
        send(client_.get(), buf.data(), buf.size(), MSG_NOSIGNAL);
    });
  }
  ~TcpFlow() {
    stop_ = true;
    if (writer_.joinable()) writer_.join();
    shutdown(client_.get(), SHUT_WR);
    if (reader_.joinable()) reader_.join();
  }

 private:
  Meter& meter_;
  Fd listener_, client_, server_;
  std::atomic<bool> stop_{false};
  std::thread reader_, writer_;
};

struct ShareResult {
  double peerlink = 0, tcp = 0;  // bytes per second in the measured window
};

ShareResult measure(const NamespacePair& pair, CongestionControl cc, bool with_peerlink,
                    const std::string& tcp_congestion, double seconds) {
  const bool with_tcp = !tcp_congestion.empty();
  Meter peerlink_meter, tcp_meter;
  std::unique_ptr<Host> a, b;
  ConnectionHandle c{};
  std::vector<uint8_t> payload(64 << 10, 0x3c);
  if (with_peerlink) {
    HostConfig cb = bench_host_config(NamespacePair::kServerIp),
               ca = bench_host_config(NamespacePair::kClientIp);
    ca.congestion_control = cb.congestion_control = cc;
    cb.callback_thread = CallbackThread::kService;
    // Hosts, listen sockets and connections belong to the namespace of the thread that makes them.
    uint16_t port = 0;
    {
      ScopedNamespace in_b(pair.server_fd());
      b = std::make_unique<Host>(std::move(cb));
      ignore_events(*b);
      b->set_message_callback([&](Message&& m) { peerlink_meter.add(m.size()); });
      Result<ListenSocketHandle> l = b->listen(0);
      if (!l) throw std::runtime_error("listen: " + l.error().message);
      port = b->listen_address(*l)->port();
    }
    ScopedNamespace in_a(pair.client_fd());
    a = std::make_unique<Host>(std::move(ca));
    ignore_events(*a);
    const Address to = *Address::parse(std::string(NamespacePair::kServerIp) + ":" + std::to_string(port));
    c = connect_and_wait(*a, to, b->identity().public_key(), 10);
  }
  std::unique_ptr<TcpFlow> tcp;
  if (with_tcp) {
    tcp = std::make_unique<TcpFlow>(pair, tcp_congestion, tcp_meter);
    tcp->start();
  }
  const auto start = std::chrono::steady_clock::now();
  const auto window_start = start + std::chrono::seconds(2);
  const auto window_end = window_start + std::chrono::duration<double>(seconds);
  for (auto now = start; now < window_end; now = std::chrono::steady_clock::now()) {
    if (now >= window_start && !tcp_meter.counting) tcp_meter.counting = peerlink_meter.counting = true;
    if (!a) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    auto st = a->status(c);
    if (!st || st->state == ConnectionState::kClosed) throw std::runtime_error("the connection ended");
    if (st->queued_bytes < kKeepQueued) {
      if (a->send(c, payload.data(), payload.size()) != SendResult::kOk)
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    a->run_callbacks();
  }
  tcp_meter.counting = peerlink_meter.counting = false;
  tcp.reset();
  a.reset();
  b.reset();
  return ShareResult{double(peerlink_meter.bytes.load()) / seconds, double(tcp_meter.bytes.load()) / seconds};
}

}  // namespace

void run_tcp_share(double seconds) {
  std::string why;
  auto pair = NamespacePair::create(&why);
  if (!pair) throw std::runtime_error("namespaces: " + why);
  // The bottleneck: a token bucket of 80 Mbit/s on a's side of the veth, with a 256 KB drop-tail queue
  // (25 ms at that rate; the veth's own round trip is tens of microseconds).
  run_tc({"-n", pair->client_name(), "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "80mbit", "burst",
          "64kb", "limit", "256kb"});
  seconds = std::max(seconds, 5.0);
  std::string tcp_default;
  {
    ScopedNamespace in_a(pair->client_fd());
    std::ifstream in("/proc/sys/net/ipv4/tcp_congestion_control");
    std::getline(in, tcp_default);
  }
  const CongestionControl ours[] = {CongestionControl::kBbr, CongestionControl::kCubic};
  double alone[2];
  for (int i = 0; i < 2; ++i)
    alone[i] = measure(*pair, ours[i], true, "", seconds).peerlink;
  // Kernel TCP with CUBIC (the loss-based default of most systems) and with its BBR.
  std::string available;
  {
    std::ifstream in("/proc/sys/net/ipv4/tcp_available_congestion_control");
    std::getline(in, available);
  }
  for (const std::string tcp_cc : {"cubic", "bbr"}) {
    if ((" " + available + " ").find(" " + tcp_cc + " ") == std::string::npos) {
      std::fprintf(stderr, "peerlink-bench: tcp-share: this kernel has no TCP %s (it offers: %s); skipped\n",
                   tcp_cc.c_str(), available.c_str());
      continue;
    }
    const ShareResult tcp_alone = measure(*pair, CongestionControl::kBbr, false, tcp_cc, seconds);
    Figure f0{"tcp-share/tcp-" + tcp_cc + "-alone", tcp_alone.tcp / 1e6, "MB/s", {}};
    f0.add("bottleneck", "tbf 80 Mbit/s, 256 KB queue")
        .add("system_default_tcp_congestion_control", tcp_default)
        .compare("link", kLinkBytesPerSecond / 1e6)
        .print();
    for (int i = 0; i < 2; ++i) {
      const ShareResult both = measure(*pair, ours[i], true, tcp_cc, seconds);
      Figure f{std::string("tcp-share/peerlink-") + congestion_name(ours[i]) + "-with-tcp-" + tcp_cc,
               both.peerlink / 1e6,
               "MB/s",
               {}};
      f.add("tcp_MBps", both.tcp / 1e6)
          .add("peerlink_alone_MBps", alone[i] / 1e6)
          .add("tcp_share", both.tcp / (both.tcp + both.peerlink))
          .add("tcp_vs_alone", tcp_alone.tcp > 0 ? both.tcp / tcp_alone.tcp : 0.0)
          .add("target", "tcp keeps >= 25% of the link");
      f.compare("link", kLinkBytesPerSecond / 1e6).print();
    }
  }
}

}  // namespace peerlink::bench
