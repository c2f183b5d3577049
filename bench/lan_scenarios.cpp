#include "lan_scenarios.hpp"

#include <net/if.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench_output.hpp"
#include "lan/lab_beacon.hpp"
#include "lan/lan_lab.hpp"
#include "mdns_engine.hpp"
#include "mdns_socket.hpp"
#include "measure.hpp"
#include "netlab/netns.hpp"
#include "p2p_scale.hpp"
#include "peerlink/host.hpp"
#include "peerlink/lan.hpp"

namespace peerlink::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using test::LabBeacon;
using test::LanLab;

// One cold start of the beacons on `hosts`: ms until every one sees all the others; < 0 on a timeout.
double discover_once(const std::vector<std::string>& hosts) {
  std::vector<std::unique_ptr<LabBeacon>> beacons;
  for (const std::string& ns : hosts)
    beacons.push_back(std::make_unique<LabBeacon>(ns, 1, true, false, "bench"));
  const auto t0 = Clock::now();
  for (auto& b : beacons)
    b->start();
  for (;;) {
    bool all = true;
    for (auto& b : beacons)
      all = all && b->peer_count() == hosts.size() - 1;
    if (all) return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (Clock::now() - t0 > 10s) return -1;
    std::this_thread::sleep_for(100us);
  }
}

// The baseline: each host sends one datagram to the group at one moment; ms until every host has one from
// each of the others; < 0 on a timeout.
double fan_out_once(const std::vector<std::string>& hosts) {
  const size_t n = hosts.size();
  std::vector<std::unique_ptr<lan::MdnsSocket>> sockets;
  std::vector<int> indexes;
  for (const std::string& ns : hosts) {
    netlab::NetnsScope scope(ns);
    auto s = std::make_unique<lan::MdnsSocket>();
    std::string why;
    const int index = static_cast<int>(if_nametoindex("eth0"));
    if (!s->open(true, false, 5354, &why) || !s->join(index, &why)) throw std::runtime_error(ns + ": " + why);
    sockets.push_back(std::move(s));
    indexes.push_back(index);
  }
  std::atomic<bool> go{false};
  std::vector<double> finished(n, -1);
  std::vector<std::thread> threads;
  Clock::time_point t0{};
  std::mutex m;
  std::condition_variable cv;
  for (size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return go.load(); });
      }
      const std::vector<uint8_t> hello(64, static_cast<uint8_t>(i));
      std::string why;
      sockets[i]->send_multicast(AF_INET, indexes[i], hello, &why);
      std::set<std::string> from;
      while (from.size() < n - 1 && Clock::now() - t0 < 5s) {
        pollfd p{sockets[i]->fd4(), POLLIN, 0};
        poll(&p, 1, 100);
        lan::Datagram d;
        while (sockets[i]->receive(sockets[i]->fd4(), d))
          if (d.bytes != hello) from.insert(d.source.str());
      }
      if (from.size() == n - 1)
        finished[i] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    });
  }
  {
    std::lock_guard<std::mutex> lock(m);
    t0 = Clock::now();
    go = true;
  }
  cv.notify_all();
  for (auto& t : threads)
    t.join();
  double worst = 0;
  for (double f : finished) {
    if (f < 0) return -1;
    worst = std::max(worst, f);
  }
  return worst;
}

// The beacon of a whole peer in these scenarios: service "bench", its own responder, IPv4.
LanOptions bench_lan_options(const Identity& identity) {
  LanOptions o;
  o.identity = identity;
  o.service = "bench";
  o.responder = LanResponder::kOwn;
  o.ipv6 = false;
  return o;
}

// One cold start of whole peers (a Host with a LanBeacon, own responder) on `hosts`, each made on a thread
// of its own inside its namespace at one moment (as processes starting together would): ms from that
// moment until every beacon lists all the others; < 0 on a timeout.
double discover_plugins_once(const std::vector<std::string>& hosts) {
  struct Peer {
    std::shared_ptr<LanBeacon> beacon;
    std::unique_ptr<Host> host;
  };
  std::vector<Peer> peers(hosts.size());
  std::mutex m;
  std::condition_variable cv;
  bool go = false;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < hosts.size(); ++i) {
    threads.emplace_back([&, i] {
      netlab::NetnsScope scope(hosts[i]);
      HostConfig config;
      const LanOptions o = bench_lan_options(config.identity);
      {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return go; });
      }
      peers[i].beacon = std::make_shared<LanBeacon>(o);
      config.signaling.push_back(peers[i].beacon);
      peers[i].host = std::make_unique<Host>(config);
    });
  }
  std::this_thread::sleep_for(20ms);  // every thread waiting
  const auto t0 = Clock::now();
  {
    std::lock_guard<std::mutex> lock(m);
    go = true;
  }
  cv.notify_all();
  for (std::thread& t : threads)
    t.join();
  for (;;) {
    bool all = true;
    for (const Peer& p : peers)
      all = all && p.beacon->peers().size() == hosts.size() - 1;
    if (all) return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (Clock::now() - t0 > 10s) return -1;
    std::this_thread::sleep_for(200us);
  }
}

// Multicast datagrams a minute one peer sends on one interface once started (both families), over
// `minutes` of the engine's own timers on a virtual clock (its defaults: a 120 s TTL).
double steady_multicast_per_minute(int minutes) {
  const Identity id = Identity::generate();
  lan::EngineConfig c;
  c.service = *lan::service_name("bench");
  c.self.key = id.public_key();
  c.self.display_name = "steady";
  c.self.port = 9;
  c.private_key = id.private_key();
  lan::MdnsEngine engine(c);
  in_addr v4{};
  v4.s_addr = htonl(0x64400101);
  in6_addr v6{};
  v6.s6_addr[0] = 0xfe;
  v6.s6_addr[1] = 0x80;
  v6.s6_addr[15] = 1;
  Clock::time_point now{};
  engine.interface_up(1, {v4}, {v6}, now);
  const Clock::time_point settled = now + 10s;  // the start's queries and announcements are over
  size_t sent = 0;
  for (; now < settled + std::chrono::minutes(minutes); now = std::min(engine.next_timer(), now + 1s)) {
    engine.tick(now);
    for (const lan::Outgoing& out : engine.take_outgoing())
      if (out.multicast && now >= settled) ++sent;
  }
  return double(sent) / minutes;
}

}  // namespace

bool run_lan_discover(const LanBenchOptions& o) {
  std::string why;
  if (!test::can_build_lan_lab(&why)) {
    std::fprintf(stderr, "peerlink-bench: lan-discover skipped: %s\n", why.c_str());
    return false;
  }
  for (size_t peers : {size_t{3}, size_t{20}}) {
    LanLab lab;
    const int lan = lab.add_lan();
    std::vector<std::string> hosts;
    for (size_t i = 0; i < peers; ++i)
      hosts.push_back(lab.add_host({lan}));
    std::vector<double> ms, base;
    size_t timeouts = 0;
    for (size_t s = 0; s < o.samples; ++s) {
      const double d = discover_once(hosts);
      if (d < 0)
        ++timeouts;
      else
        ms.push_back(d);
      const double b = fan_out_once(hosts);
      if (b >= 0) base.push_back(b);
    }
    const double p50 = percentile(ms, 0.5), p99 = percentile(ms, 0.99);
    Figure f{"lan-discover", p50, "ms", {}};
    f.add_count("peers", peers).add("statistic", "p50").add("p99_ms", p99).add_count("samples", ms.size());
    f.add_count("timeouts", timeouts)
        .add("what", "beacons started at once to every peer seeing every other, IPv4");
    f.add("target", "p50 <= 50 ms").add("target_met", (timeouts == 0 && p50 <= 50) ? "yes" : "no");
    f.compare("multicast-fan-out-p50", percentile(base, 0.5)).print();

    // The same with whole peers: a Host and its LanBeacon started on a thread per host at one moment.
    std::vector<double> whole;
    size_t whole_timeouts = 0;
    for (size_t s = 0; s < o.samples; ++s) {
      const double d = discover_plugins_once(hosts);
      if (d < 0)
        ++whole_timeouts;
      else
        whole.push_back(d);
    }
    const double whole_p50 = percentile(whole, 0.5);
    Figure w{"lan-discover-hosts", whole_p50, "ms", {}};
    w.add_count("peers", peers).add("statistic", "p50").add("p99_ms", percentile(whole, 0.99));
    w.add_count("samples", whole.size()).add_count("timeouts", whole_timeouts);
    w.add("what",
          "Hosts with a LanBeacon made at once (a thread each) to every peer listing every other, IPv4");
    w.add("target", "p50 <= 50 ms")
        .add("target_met", (whole_timeouts == 0 && whole_p50 <= 50) ? "yes" : "no");
    w.compare("multicast-fan-out-p50", percentile(base, 0.5)).print();
  }
  const double per_minute = steady_multicast_per_minute(60);
  Figure steady{"lan-steady-multicast", per_minute, "datagrams/min", {}};
  steady.add("what", "multicast datagrams a peer sends per interface once started, IPv4 and IPv6 together")
      .add("how", "the engine's own timers over 60 virtual minutes")
      .add("target", "<= 2 per minute per peer per interface")
      .add("target_met", per_minute <= 2 ? "yes" : "no")
      .print();
  return true;
}

bool run_lan_connect(const LanBenchOptions& o, const std::string& peer_program) {
  std::string why;
  if (!test::can_build_lan_lab(&why)) {
    std::fprintf(stderr, "peerlink-bench: lan-connect skipped: %s\n", why.c_str());
    return false;
  }
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string responder_host = lab.add_host({lan}), initiator_host = lab.add_host({lan});
  const std::string log = "/tmp/peerlink-bench-lan-responder-" + std::to_string(getpid()) + ".log";
  const pid_t responder = netlab::spawn_in_netns(
      {peer_program, "--service", "bench", "--name", "responder", "--responder", "own"}, responder_host, log);
  // Until it is up (its "ready" line).
  const auto give_up = Clock::now() + 10s;
  bool ready = false;
  while (!ready && Clock::now() < give_up) {
    std::FILE* f = std::fopen(log.c_str(), "r");
    char line[512];
    while (f && std::fgets(line, sizeof line, f))
      ready = ready || std::strncmp(line, "ready ", 6) == 0;
    if (f) std::fclose(f);
    std::this_thread::sleep_for(5ms);
  }
  std::vector<double> ms, inside, base;
  size_t failures = 0;
  std::string last_failure;
  for (size_t s = 0; ready && s < o.samples; ++s) {
    const auto t0 = Clock::now();
    const netlab::CommandResult r =
        netlab::run_command({peer_program, "--service", "bench", "--name", "initiator", "--connect",
                             "--timeout", "10", "--responder", "own"},
                            initiator_host, "", 15s);
    const double wall = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    const size_t echo = r.output.find("echo ");
    if (!r.ok() || echo == std::string::npos) {
      ++failures;
      last_failure = r.output;
      continue;
    }
    ms.push_back(wall);
    inside.push_back(std::strtod(r.output.c_str() + echo + 5, nullptr));
    const auto b0 = Clock::now();
    if (netlab::run_command({peer_program, "--help"}, initiator_host, "", 5s).ok())
      base.push_back(std::chrono::duration<double, std::milli>(Clock::now() - b0).count());
  }
  netlab::stop_child(responder);
  std::remove(log.c_str());
  if (!ready) {
    std::fprintf(stderr, "peerlink-bench: lan-connect: the responder did not start\n");
    return false;
  }
  if (failures)
    std::fprintf(stderr, "peerlink-bench: lan-connect: %zu failed; last: %s\n", failures,
                 last_failure.c_str());
  const double p50 = percentile(ms, 0.5);
  Figure f{"lan-connect", p50, "ms", {}};
  f.add("statistic", "p50")
      .add("p99_ms", percentile(ms, 0.99))
      .add("in_process_p50_ms", percentile(inside, 0.5));
  f.add_count("samples", ms.size()).add_count("failures", failures);
  f.add("what", "process start to the echo of its first reliable message to a peer it discovered on the LAN");
  f.add("target", "p50 <= 150 ms")
      .add("target_met", (failures == 0 && !ms.empty() && p50 <= 150) ? "yes" : "no");
  f.compare("process-start-exit-p50", percentile(base, 0.5)).print();
  return true;
}

bool run_p2p_scale_lan(const P2PScaleOptions& o) {
  std::string why;
  if (!test::can_build_lan_lab(&why)) {
    std::fprintf(stderr, "peerlink-bench: p2p-scale-lan skipped: %s\n", why.c_str());
    return false;
  }
  raise_descriptor_limit();
  bool ok = true;
  for (size_t n : o.connections) {
    LanLab lab;
    const int lan = lab.add_lan();
    const std::string ns_a = lab.add_host({lan}), ns_b = lab.add_host({lan});
    // A Host made inside a namespace: its threads, and the sockets they make, live there.
    auto host_in = [](const std::string& ns, HostConfig config) {
      netlab::NetnsScope scope(ns);
      config.log_level = LogLevel::kError;
      config.callback_thread = CallbackThread::kService;
      config.ice.interfaces_allow = {"eth0"};
      return std::make_unique<Host>(std::move(config));
    };

    ScaleOutcome direct;
    {
      auto b = host_in(ns_b, HostConfig());
      b->set_connection_callback([](const ConnectionEvent&) {});
      Result<ListenSocketHandle> l = [&] {
        netlab::NetnsScope scope(ns_b);
        return b->listen(0);
      }();
      if (!l) throw std::runtime_error("listen: " + l.error().message);
      const Address to =
          *Address::parse(lab.ipv4(ns_b) + ":" + std::to_string(b->listen_address(*l)->port()));
      auto a = host_in(ns_a, HostConfig());
      ScaleTally tally;
      tally.count(*a);
      std::this_thread::sleep_for(100ms);
      netlab::NetnsScope scope(ns_a);  // connect() makes the client socket here
      direct = measure_connect_many(n, tally, [&] { return a->connect(to); });
    }

    ScaleOutcome p2p;
    {
      auto peer = [&](const std::string& ns) {
        HostConfig config;
        std::shared_ptr<LanBeacon> beacon;
        {
          netlab::NetnsScope scope(ns);
          beacon = std::make_shared<LanBeacon>(bench_lan_options(config.identity));
        }
        config.signaling.push_back(beacon);
        return std::make_pair(beacon, host_in(ns, std::move(config)));
      };
      // Not structured bindings: C++17 lambdas cannot capture those.
      auto peer_b = peer(ns_b);
      auto peer_a = peer(ns_a);
      const std::shared_ptr<LanBeacon>& beacon_b = peer_b.first;
      const std::shared_ptr<LanBeacon>& beacon_a = peer_a.first;
      Host& b = *peer_b.second;
      Host& a = *peer_a.second;
      b.set_connection_callback([](const ConnectionEvent&) {});
      if (!b.listen_p2p()) throw std::runtime_error("listen_p2p failed");
      const PeerId b_id = beacon_b->local_peer();
      const auto t0 = Clock::now();
      while (!beacon_a->peer(b_id) && Clock::now() - t0 < 10s)
        std::this_thread::sleep_for(1ms);
      if (!beacon_a->peer(b_id))
        throw std::runtime_error("the peers did not discover each other within 10 s");
      ScaleTally tally;
      tally.count(a);
      std::this_thread::sleep_for(100ms);
      p2p = measure_connect_many(n, tally, [&] { return a.connect(b_id); });
      p2p.ice_restarts = a.counters().ice_restarts + b.counters().ice_restarts;
    }
    print_scale("p2p-scale-lan", n, p2p, direct, "lan beacon", "the same connections over direct UDP");
    ok = ok && p2p.connected == n;
  }
  return ok;
}

}  // namespace peerlink::bench
