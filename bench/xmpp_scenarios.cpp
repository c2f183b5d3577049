#include "xmpp_scenarios.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_output.hpp"
#include "measure.hpp"
#include "peerlink/host.hpp"
#include "peerlink/testkit/in_process_signaling.hpp"
#include "peerlink/xmpp.hpp"
#include "xmpp/prosody.hpp"

namespace peerlink::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A Host with one signaling plugin, ICE on the loopback; the listening side records when the first
// message of each connection arrives.
struct Side {
  Side(std::shared_ptr<SignalingPlugin> plugin, bool listen) {
    HostConfig c;
    c.log_level = LogLevel::kError;
    c.signaling.push_back(std::move(plugin));
    c.ice.interfaces_allow = {"lo"};
    c.callback_thread = CallbackThread::kService;
    host = std::make_unique<Host>(std::move(c));
    host->set_connection_callback([](const ConnectionEvent&) {});
    host->set_message_callback([this](Message&&) {
      std::lock_guard<std::mutex> lock(m);
      if (!delivered) delivered_at = Clock::now();
      delivered = true;
      cv.notify_all();
    });
    if (listen && !host->listen_p2p()) throw std::runtime_error("listen_p2p failed");
  }
  std::unique_ptr<Host> host;
  std::mutex m;
  std::condition_variable cv;
  bool delivered = false;
  Clock::time_point delivered_at;
};

// connect() to the first message delivered at b, in ms; both ends are closed afterwards.
double connect_once(Side& a, Side& b, const PeerId& to) {
  {
    std::lock_guard<std::mutex> lock(b.m);
    b.delivered = false;
  }
  const auto t0 = Clock::now();
  Result<ConnectionHandle> c = a.host->connect(to);
  if (!c) throw std::runtime_error("connect: " + c.error().message);
  if (a.host->send(*c, "hello", 5) != SendResult::kOk)
    throw std::runtime_error("send before connected refused");
  double ms = 0;
  {
    std::unique_lock<std::mutex> lock(b.m);
    while (!b.delivered && Clock::now() - t0 < 10s) {
      b.cv.wait_for(lock, 20ms);
      auto info = a.host->connection_info(*c);
      if (info && info->state == ConnectionState::kClosed)
        throw std::runtime_error("ended: " + info->end_debug);
    }
    if (!b.delivered) throw std::runtime_error("no message delivered within 10 s");
    ms = ms_since(t0, b.delivered_at);
  }
  std::this_thread::sleep_for(50ms);  // the last acknowledgements and signaling of this setup
  a.host->close(*c);
  for (ConnectionHandle h : b.host->connections())
    b.host->close(h);
  std::this_thread::sleep_for(20ms);
  return ms;
}

XmppOptions quiet(XmppOptions o) {
  o.log_level = LogLevel::kError;
  return o;
}

}  // namespace

bool run_xmpp_connect(const XmppBenchOptions& o) {
  std::string why;
  if (!test::have_prosody(&why)) {
    std::fprintf(stderr, "peerlink-bench: xmpp-connect skipped: %s\n", why.c_str());
    return false;
  }
  test::ProsodyServer server;
  server.start();

  // Logins: fresh plugins, start() (in the Host's constructor) to kOnline.
  std::vector<double> login_ms;
  for (size_t i = 0; i < o.samples; ++i) {
    auto plugin = std::make_shared<XmppSignaling>(quiet(server.client("alice", "login" + std::to_string(i))));
    const auto t0 = Clock::now();
    Side side(plugin, false);
    if (!plugin->wait_online(10s)) throw std::runtime_error("login: " + plugin->status().reason);
    login_ms.push_back(ms_since(t0, Clock::now()));
  }

  // Baseline: in-process signaling between two Hosts of this process.
  std::vector<double> base_ms;
  {
    auto hub = std::make_shared<testkit::SignalingHub>();
    Side a(hub->plugin("a"), false), b(hub->plugin("b"), true);
    connect_once(a, b, testkit::SignalingHub::id("b"));  // warm-up
    for (size_t i = 0; i < o.samples; ++i)
      base_ms.push_back(connect_once(a, b, testkit::SignalingHub::id("b")));
  }

  // Through Prosody: alice connects to bob's bare JID.
  std::vector<double> xmpp_ms;
  double bytes_a = 0, bytes_b = 0;
  {
    auto pa = std::make_shared<XmppSignaling>(quiet(server.client("alice", "bench")));
    auto pb = std::make_shared<XmppSignaling>(quiet(server.client("bob", "bench")));
    Side a(pa, false), b(pb, true);
    if (!pa->wait_online(10s) || !pb->wait_online(10s))
      throw std::runtime_error("the benchmark accounts cannot log in");
    // bob's bare JID is reachable once his presence has reached alice.
    for (auto give_up = Clock::now() + 10s;;) {
      const std::vector<PeerId> seen = pa->contacts();
      if (std::find(seen.begin(), seen.end(), pb->local_peer()) != seen.end()) break;
      if (Clock::now() >= give_up) throw std::runtime_error("alice does not see bob online");
      std::this_thread::sleep_for(2ms);
    }
    const PeerId bob = *PeerId::parse("xmpp:" + server.jid("bob"));
    connect_once(a, b, bob);  // warm-up
    const uint64_t a0 = pa->counters().stanza_bytes_sent, b0 = pb->counters().stanza_bytes_sent;
    for (size_t i = 0; i < o.samples; ++i)
      xmpp_ms.push_back(connect_once(a, b, bob));
    bytes_a = double(pa->counters().stanza_bytes_sent - a0) / double(o.samples);
    bytes_b = double(pb->counters().stanza_bytes_sent - b0) / double(o.samples);
  }

  const double base_p50 = percentile(base_ms, 0.5);
  const double p50 = percentile(xmpp_ms, 0.5), p99 = percentile(xmpp_ms, 0.99);
  Figure f{"xmpp-connect", p50, "ms", {}};
  f.add("statistic", "p50").add("p99_ms", p99).add_count("samples", xmpp_ms.size());
  const bool met = p50 <= 100 && p50 <= base_p50 + 20;
  f.add("target", "p50 <= 100 ms and <= baseline + 20 ms").add("target_met", met ? "yes" : "no");
  f.compare("in-process-signaling-p50", base_p50).print();

  const double login_p50 = percentile(login_ms, 0.5), login_p99 = percentile(login_ms, 0.99);
  Figure l{"xmpp-login", login_p50, "ms", {}};
  l.add("statistic", "p50").add("p99_ms", login_p99).add_count("samples", login_ms.size());
  l.add("what", "TLS + SCRAM-SHA-1 + bind + roster + presence, to kOnline");
  l.add("target_ms", 200.0).add("target_met", login_p50 <= 200 ? "yes" : "no").print();

  Figure s{"xmpp-stanza-bytes", std::max(bytes_a, bytes_b), "bytes/setup/side", {}};
  s.add("connecting_side", bytes_a).add("accepting_side", bytes_b);
  s.add("target_bytes", 10000.0).add("target_met", std::max(bytes_a, bytes_b) < 10000 ? "yes" : "no").print();
  return true;
}

}  // namespace peerlink::bench
