#include "p2p_scenarios.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_output.hpp"
#include "measure.hpp"
#include "netlab/lab.hpp"
#include "netlab/lab_ice.hpp"
#include "peerlink/host.hpp"
#include "peerlink/testkit/in_process_signaling.hpp"
#include "raw_socket.hpp"

namespace peerlink::bench {
namespace {

using Clock = std::chrono::steady_clock;
using netlab::Lab;
using netlab::lab_ice;
using netlab::NatType;
using netlab::NetnsScope;
using netlab::Site;
using testkit::SignalingHub;

// A Host living in namespace ns (its service thread is created there); messages go to on_message on the
// service thread when given.
std::unique_ptr<Host> host_in(const std::string& ns, const std::shared_ptr<SignalingHub>& hub,
                              const std::string& name, const IceConfig& ice,
                              Host::MessageCallback on_message = nullptr) {
  HostConfig c;
  c.log_level = LogLevel::kError;
  c.signaling.push_back(hub->plugin(name));
  c.ice = ice;
  if (on_message) c.callback_thread = CallbackThread::kService;
  std::unique_ptr<Host> h;
  {
    NetnsScope scope(ns);
    h = std::make_unique<Host>(std::move(c));
  }
  h->set_connection_callback([](const ConnectionEvent&) {});
  if (on_message) h->set_message_callback(std::move(on_message));
  if (name == "b") {
    Result<ListenSocketHandle> l = h->listen_p2p();
    if (!l) throw std::runtime_error("listen_p2p: " + l.error().message);
  }
  return h;
}

std::string pairing_name(NatType a, NatType b) {
  return std::string(netlab::to_string(a)) + "_" + netlab::to_string(b);
}

bool relayed_pairing(NatType x, NatType y) {
  if (x == NatType::kUdpBlocked || y == NatType::kUdpBlocked) return true;
  auto restricted = [](NatType t) { return t == NatType::kSymmetric || t == NatType::kPortRestricted; };
  return (x == NatType::kSymmetric && restricted(y)) || (y == NatType::kSymmetric && restricted(x));
}

struct ConnectSample {
  double ms = 0;
  RouteType route = RouteType::kNone;
  size_t blobs_a = 0, blobs_b = 0;  // signaling blobs each side sent, until the Hosts were destroyed
};

// Fresh Hosts; connect() to the first reliable message delivered at b. Throws on failure or after 10 s.
ConnectSample connect_once(const Lab& lab, const Site& sa, const Site& sb) {
  auto hub = std::make_shared<SignalingHub>();
  std::mutex m;
  std::condition_variable cv;
  bool delivered = false;
  Clock::time_point delivered_at;
  auto b = host_in(sb.peer_ns(0), hub, "b", lab_ice(lab), [&](Message&&) {
    std::lock_guard<std::mutex> lock(m);
    if (!delivered) delivered_at = Clock::now();
    delivered = true;
    cv.notify_all();
  });
  auto a = host_in(sa.peer_ns(0), hub, "a", lab_ice(lab));
  const auto t0 = Clock::now();
  Result<ConnectionHandle> connecting = a->connect(SignalingHub::id("b"));
  if (!connecting) throw std::runtime_error("connect: " + connecting.error().message);
  const ConnectionHandle c = *connecting;
  if (a->send(c, "hello", 5) != SendResult::kOk) throw std::runtime_error("send before connected refused");
  {
    std::unique_lock<std::mutex> lock(m);
    while (!delivered && Clock::now() - t0 < std::chrono::seconds(10)) {
      cv.wait_for(lock, std::chrono::milliseconds(20));
      auto info = a->connection_info(c);
      if (info && info->state == ConnectionState::kClosed)
        throw std::runtime_error("connection ended: " + info->end_debug);
    }
    if (!delivered) throw std::runtime_error("no message delivered within 10 s");
  }
  ConnectSample s;
  s.ms = ms_since(t0, delivered_at);
  s.route = a->connection_info(c)->route;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // late acknowledgements count too
  s.blobs_a = hub->blobs_to("b");
  s.blobs_b = hub->blobs_to("a");
  a.reset();
  b.reset();
  return s;
}

// Median round trip of a STUN Binding from the site's first peer to the lab's coturn: over UDP, or over an
// established TCP connection where UDP is blocked (*over_tcp says which).
double stun_rtt_ms(const Lab& lab, const Site& site, bool* over_tcp) {
  std::vector<double> rtts;
  *over_tcp = site.nat() == NatType::kUdpBlocked;
  for (int i = 0; i < 5; ++i) {
    NetnsScope scope(site.peer_ns(0));
    if (*over_tcp) {
      auto tcp = netlab::TcpSocket::connect(lab.turn_server(), std::chrono::milliseconds(500));
      if (!tcp) continue;
      const auto t0 = Clock::now();
      if (netlab::stun::binding_tcp(*tcp, std::chrono::milliseconds(500)))
        rtts.push_back(ms_since(t0, Clock::now()));
    } else {
      netlab::UdpSocket sock;
      const auto t0 = Clock::now();
      if (netlab::stun::binding(sock, lab.turn_server(), std::chrono::milliseconds(500)))
        rtts.push_back(ms_since(t0, Clock::now()));
    }
  }
  return percentile(rtts, 0.5);
}

std::vector<std::pair<NatType, NatType>> all_pairings() {
  const NatType types[] = {NatType::kNone, NatType::kFullCone, NatType::kPortRestricted, NatType::kSymmetric,
                           NatType::kUdpBlocked};
  std::vector<std::pair<NatType, NatType>> out;
  for (size_t i = 0; i < 5; ++i)
    for (size_t j = i; j < 5; ++j)
      out.emplace_back(types[i], types[j]);
  return out;
}

// Blasts `datagram` from tx to `to` with sendmmsg until the window ends (paced to `rate` bytes per second of
// datagrams when non-zero, in batches of 32), and counts what rx receives in the measured window (after the
// warm-up), less `overhead` bytes of framing per datagram: bytes per second.
double blast(int tx, const sockaddr_in& to, const std::vector<uint8_t>& datagram, int rx, size_t overhead,
             double seconds, double rate = 0) {
  for (int fd : {rx, tx})  // blocking from here on, like the other baselines
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  set_socket_buffers(rx, 4 << 20);
  set_socket_buffers(tx, 4 << 20);
  set_timeout(rx, SO_RCVTIMEO, 50);

  std::atomic<bool> stop{false};
  std::thread sender([&] {
    mmsghdr msgs[32];
    iovec iov[32];
    for (int i = 0; i < 32; ++i) {
      iov[i] = {const_cast<uint8_t*>(datagram.data()), datagram.size()};
      std::memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(&to);
      msgs[i].msg_hdr.msg_namelen = sizeof to;
    }
    const auto batch_time =
        std::chrono::duration<double>(rate > 0 ? 32.0 * double(datagram.size()) / rate : 0);
    auto next = Clock::now();
    while (!stop.load(std::memory_order_relaxed)) {
      if (rate > 0) {
        next += std::chrono::duration_cast<Clock::duration>(batch_time);
        std::this_thread::sleep_until(next);
      }
      sendmmsg(tx, msgs, 32, 0);
    }
  });
  std::vector<uint8_t> buf(32 * 2048);
  mmsghdr msgs[32];
  iovec iov[32];
  for (int i = 0; i < 32; ++i) {
    iov[i] = {buf.data() + i * 2048, 2048};
    std::memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const auto start = Clock::now();
  const auto window_start = start + std::chrono::duration<double>(warmup_seconds(seconds));
  const auto window_end = window_start + std::chrono::duration<double>(seconds);
  uint64_t bytes = 0;
  for (auto now = Clock::now(); now < window_end; now = Clock::now()) {
    int n = recvmmsg(rx, msgs, 32, 0, nullptr);
    if (n <= 0 || now < window_start) continue;
    for (int i = 0; i < n; ++i)
      if (msgs[i].msg_len > overhead) bytes += msgs[i].msg_len - overhead;
  }
  stop = true;
  sender.join();
  return double(bytes) / seconds;
}

// A raw UDP blast of 1200-byte datagrams from a's namespace to b's, through the lab's NATs: b first sends
// to a's public address (opening its own NAT; a is public or full cone), a blasts to where that came from.
// Bytes per second received in the measured window.
double raw_blast(const Site& sa, const Site& sb, double seconds) {
  std::optional<netlab::UdpSocket> tx, rx;
  {
    NetnsScope scope(sa.peer_ns(0));
    tx.emplace("0.0.0.0", 0);
  }
  {
    NetnsScope scope(sb.peer_ns(0));
    rx.emplace("0.0.0.0", 0);
  }
  const netlab::Endpoint a_public{sa.public_ip(0), tx->local().port};
  std::optional<netlab::Endpoint> b_seen;
  for (int i = 0; i < 10 && !b_seen; ++i) {
    rx->send_to(a_public, netlab::Bytes{'p'});
    if (auto d = tx->receive(std::chrono::milliseconds(100))) b_seen = d->from;
  }
  if (!b_seen) throw std::runtime_error("raw blast: no path from b to a's public address");
  return blast(tx->fd(), ipv4_address(b_seen->ip, b_seen->port), std::vector<uint8_t>(1200, 0x5a), rx->fd(),
               0, seconds);
}

// coturn's own forwarding limit on the path a relayed pair takes: a and b each allocate on the lab's coturn
// (TURN over UDP, static user) and bind a channel to the other's relayed address; a sends ChannelData with
// 1200 bytes of payload, which coturn takes in on a's allocation, sends from a's relayed address to b's, and
// hands to b as ChannelData. An unpaced blast measures less than coturn can do (on a small machine the
// sender's busy core is taken from coturn), so the sender is paced at rising rates, 1 s each, until what
// arrives falls below 90 % of what was sent: the most payload per second b received at any rate.
struct RelayLimit {
  double best = 0;       // payload bytes per second
  double saturated = 0;  // the offered payload rate at which less than 90 % came through (0: never)
};

RelayLimit turn_relay_limit(const Lab& lab, const Site& sa, const Site& sb) {
  std::optional<netlab::UdpSocket> tx, rx;
  {
    NetnsScope scope(sa.peer_ns(0));
    tx.emplace("0.0.0.0", 0);
  }
  {
    NetnsScope scope(sb.peer_ns(0));
    rx.emplace("0.0.0.0", 0);
  }
  const auto answer = std::chrono::seconds(3);
  const netlab::stun::Credentials creds = lab.turn_credentials();
  const netlab::stun::AllocateResult ra = netlab::stun::allocate(*tx, lab.turn_server(), creds, answer);
  const netlab::stun::AllocateResult rb = netlab::stun::allocate(*rx, lab.turn_server(), creds, answer);
  if (!ra.ok() || !rb.ok())
    throw std::runtime_error("turn blast: allocate failed (" + std::to_string(ra.error_code) + ", " +
                             std::to_string(rb.error_code) + ")");
  constexpr uint16_t kChannel = 0x4000;
  if (netlab::stun::channel_bind(*tx, lab.turn_server(), creds, ra.realm, ra.nonce, kChannel, *rb.relayed,
                                 answer) != 0 ||
      netlab::stun::channel_bind(*rx, lab.turn_server(), creds, rb.realm, rb.nonce, kChannel, *ra.relayed,
                                 answer) != 0)
    throw std::runtime_error("turn blast: ChannelBind failed");
  const netlab::Endpoint server = lab.turn_server();
  const netlab::Bytes datagram = netlab::stun::channel_data(kChannel, netlab::Bytes(1200, 0x5a));
  RelayLimit limit;
  for (double offered = 40e6; offered <= 1e9; offered *= 1.25) {
    const double got =
        blast(tx->fd(), ipv4_address(server.ip, server.port), datagram, rx->fd(), 4, 1.0, offered);
    limit.best = std::max(limit.best, got);
    const double payload_offered = offered * 1200 / double(datagram.size());
    if (got < 0.9 * payload_offered) {
      limit.saturated = payload_offered;
      break;
    }
  }
  return limit;
}

// Reliable 64 KiB messages from a to b for the window; bytes per second delivered in order. Through ICE
// (with relay_only, relay candidates only: through the lab's coturn, TURN over UDP), or, with direct, over
// a plain UDP connection to b's public address (connect(Address) to a listen socket: no ICE).
double host_goodput(const Lab& lab, const Site& sa, const Site& sb, double seconds, RouteType* route,
                    bool relay_only = false, bool direct = false) {
  auto hub = std::make_shared<SignalingHub>();
  std::atomic<uint64_t> bytes{0}, next{1};
  std::atomic<bool> counting{false}, disorder{false};
  IceConfig ice = lab_ice(lab);
  if (relay_only) {
    ice.candidates = candidate_kinds::kRelay;
    ice.turn_servers.resize(1);  // the UDP one
  }
  auto b = host_in(sb.peer_ns(0), hub, "b", ice, [&](Message&& m) {
    if (m.number() != next.fetch_add(1)) disorder = true;
    if (counting.load(std::memory_order_relaxed)) bytes += m.size();
  });
  auto a = host_in(sa.peer_ns(0), hub, "a", ice);
  Result<ConnectionHandle> connecting = [&]() -> Result<ConnectionHandle> {
    if (!direct) return a->connect(SignalingHub::id("b"));
    // Sockets are made in the namespace of the thread that asks for them.
    Result<ListenSocketHandle> l = [&] {
      NetnsScope scope(sb.peer_ns(0));
      return b->listen(0);
    }();
    if (!l) return l.error();
    ConnectOptions options;
    options.expected_key = b->identity().public_key();
    const uint16_t port = b->listen_address(*l)->port();
    NetnsScope scope(sa.peer_ns(0));
    return a->connect(*Address::parse(sb.public_ip(0) + ":" + std::to_string(port)), options);
  }();
  if (!connecting) throw std::runtime_error("connect: " + connecting.error().message);
  const ConnectionHandle c = *connecting;
  const auto t0 = Clock::now();
  while (a->connection_info(c)->state != ConnectionState::kConnected) {
    if (Clock::now() - t0 > std::chrono::seconds(10)) throw std::runtime_error("connect took over 10 s");
    if (a->connection_info(c)->state == ConnectionState::kClosed)
      throw std::runtime_error("connection ended: " + a->connection_info(c)->end_debug);
    a->wait(std::chrono::milliseconds(5));
    a->run_callbacks();
  }
  *route = a->connection_info(c)->route;
  std::vector<uint8_t> payload(64 << 10, 0xa5);
  const auto start = Clock::now();
  const auto window_start = start + std::chrono::duration<double>(warmup_seconds(seconds));
  const auto window_end = window_start + std::chrono::duration<double>(seconds);
  for (auto now = Clock::now(); now < window_end; now = Clock::now()) {
    if (!counting && now >= window_start) counting = true;
    // Keep a bounded amount queued: the goodput is the path's, not the send buffer's.
    auto st = a->status(c);
    if (st && st->queued_bytes < kKeepQueued) {
      a->send(c, payload.data(), payload.size());
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  counting = false;
  if (disorder) throw std::runtime_error("messages out of order");
  return double(bytes.load()) / seconds;
}

}  // namespace

void run_p2p_connect(const P2PBenchOptions& o) {
  for (auto [ta, tb] : all_pairings()) {
    const std::string name = pairing_name(ta, tb);
    Lab lab;
    Site sa = lab.add_site(ta), sb = lab.add_site(tb);
    std::vector<double> ms;
    RouteType route = RouteType::kNone;
    size_t max_blobs = 0;
    try {
      connect_once(lab, sa, sb);  // warm-up: first use of libnice and of the lab's paths
      for (size_t i = 0; i < o.samples; ++i) {
        ConnectSample s = connect_once(lab, sa, sb);
        ms.push_back(s.ms);
        route = s.route;
        max_blobs = std::max({max_blobs, s.blobs_a, s.blobs_b});
      }
    } catch (const std::exception& e) {
      throw std::runtime_error(name + ": " + e.what());
    }
    bool over_tcp = false;
    const double baseline = stun_rtt_ms(lab, sa, &over_tcp);
    const bool blocked = ta == NatType::kUdpBlocked || tb == NatType::kUdpBlocked;
    const double target = blocked ? 300 : relayed_pairing(ta, tb) ? 250 : 150;
    std::vector<double> sorted = ms;
    const double p50 = percentile(sorted, 0.5), p99 = percentile(sorted, 0.99);
    Figure f{"connect-ice/" + name, p50, "ms", {}};
    f.add("statistic", "p50")
        .add("p99_ms", p99)
        .add("route", to_string(route))
        .add_count("samples", ms.size())
        .add_count("max_blobs_per_side", max_blobs);
    f.add("target_ms", target).add("target_met", p50 <= target ? "yes" : "no");
    f.compare(over_tcp ? "stun-rtt-to-coturn-tcp" : "stun-rtt-to-coturn", baseline).print();
  }
}

void run_p2p_throughput(const P2PBenchOptions& o) {
  for (auto [ta, tb] :
       {std::pair{NatType::kNone, NatType::kNone}, std::pair{NatType::kFullCone, NatType::kPortRestricted}}) {
    const std::string name = pairing_name(ta, tb);
    Lab lab;
    Site sa = lab.add_site(ta), sb = lab.add_site(tb);
    const double raw = raw_blast(sa, sb, o.seconds);
    RouteType route = RouteType::kNone;
    const double ice = host_goodput(lab, sa, sb, o.seconds, &route);
    Figure f{"throughput-ice/" + name, ice / 1e6, "MB/s", {}};
    f.add("route", to_string(route)).add("target_ratio", 0.70);
    f.compare("raw-udp-blast-1200", raw / 1e6).print();
    if (ta != NatType::kNone || tb != NatType::kNone) continue;

    // Between two public peers the Host can also connect without ICE: the path ICE must come close to.
    // Three runs of each, alternating, compared by their medians: on this VM, runs of the same build
    // differ by up to 40 %, either way.
    RouteType direct_route = RouteType::kNone, relay_route = RouteType::kNone;
    std::vector<double> ices{ice}, directs;
    for (int run = 0; run < 3; ++run) {
      directs.push_back(host_goodput(lab, sa, sb, o.seconds, &direct_route, false, true));
      if (run < 2) ices.push_back(host_goodput(lab, sa, sb, o.seconds, &route));
    }
    const std::string ice_runs = runs_text(ices, 0, 1e-6), direct_runs = runs_text(directs, 0, 1e-6);
    const double ice_median = percentile(ices, 0.5), direct = percentile(directs, 0.5);
    // And the same peers through the TURN relay (relay candidates only, TURN over UDP).
    const double relay = host_goodput(lab, sa, sb, o.seconds, &relay_route, true);
    const RelayLimit relay_limit = turn_relay_limit(lab, sa, sb);
    const double coturn_limit = relay_limit.best;
    Figure host_path{"throughput-ice-vs-direct/" + name, ice_median / 1e6, "MB/s", {}};
    host_path.add("route", to_string(route)).add("target_ratio", 0.90);
    host_path.add("metric", "median of 3 runs each, alternating")
        .add("ice_runs_MBps", ice_runs)
        .add("direct_runs_MBps", direct_runs);
    host_path.compare("host-direct-udp-same-path", direct / 1e6).print();
    Figure relayed{"throughput-ice-relay-vs-direct/" + name, relay / 1e6, "MB/s", {}};
    relayed.add("route", to_string(relay_route)).add("turn", "udp").add("target_ratio", 0.50);
    relayed.add("coturn_limit_MBps", coturn_limit / 1e6)
        .add("ratio_to_coturn_limit", coturn_limit > 0 ? relay / coturn_limit : 0.0);
    relayed.compare("host-direct-udp-same-path", direct / 1e6).print();
    Figure limit{"turn-relay-limit/" + name, coturn_limit / 1e6, "MB/s", {}};
    limit.add("what",
              "paced ChannelData, 1200-byte payloads, allocation to allocation through coturn: the most "
              "delivered at any offered rate");
    limit.add("saturated_at_offered_MBps", relay_limit.saturated / 1e6)
        .compare("host-direct-udp-same-path", direct / 1e6)
        .print();
  }
}

}  // namespace peerlink::bench
