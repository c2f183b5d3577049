// peerlink-bench: prints benchmark figures as JSON, one object per line.
//
//   peerlink-bench                                  all scenarios
//   peerlink-bench core-throughput                  one scenario (several may be named)
//   peerlink-bench --seconds 5 --connections 10000 core-memory
//   peerlink-bench --netns throughput rtt           between two network namespaces (root)
//   peerlink-bench --netns --ice connect            peer-to-peer through the NAT lab, per NAT pairing (root)
//   peerlink-bench xmpp-connect                     through a Prosody on the loopback (builds with the tests)
//   peerlink-bench lan-discover lan-connect         LAN discovery and connect in namespaces (root; with
//   tests)
//
// The two-process scenarios start this program again as their server (`--role ...`, server_roles.hpp).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core_scenarios.hpp"
#include "host_scenarios.hpp"
#include "lossy.hpp"
#include "netns.hpp"
#include "p2p_scale.hpp"
#include "tcp_share.hpp"
#ifdef PEERLINK_BENCH_P2P
#include "netlab/lab.hpp"
#include "p2p_scenarios.hpp"
#endif
#include "server_roles.hpp"
#include "teardown.hpp"
#ifdef PEERLINK_BENCH_XMPP
#include "xmpp_scenarios.hpp"
#endif
#ifdef PEERLINK_BENCH_LAN
#include "lan_scenarios.hpp"
#endif

namespace {

using namespace peerlink::bench;

constexpr int kExitSkip = 77;  // the automake/ctest convention for "skipped"

void usage() {
  std::printf(
      "usage: peerlink-bench [--seconds S] [--connections N] [--message-size B] [--netns [--ice]]\n"
      "                     [--samples N] [scenario ...]\n"
      "\n"
      "In-process scenarios (the sans-I/O core, no sockets):\n"
      "  core-throughput         encrypted reliable goodput of the core, AES-256-GCM where the CPU has AES\n"
      "                          instructions, 1200-byte packets, --message-size messages (target >= 2000 "
      "MB/s);\n"
      "                          baseline the cipher alone: one core sealing 1200-byte packets\n"
      "  core-throughput-chacha  the same with ChaCha20-Poly1305\n"
      "  core-throughput-owned   the same, each message written into a new vector that send() takes over,\n"
      "                          against writing it into one buffer that send() copies (3 runs of each)\n"
      "  core-handshake          CPU time of a connection setup (Noise IK, no address-validation cookie\n"
      "                          as when not under load, first message delivered), both endpoints on\n"
      "                          one thread\n"
      "  core-memory             heap bytes per idle connection with --connections (default 10000)\n"
      "                          connections in one endpoint (target <= 16 KiB)\n"
      "\n"
      "Congestion control through HostConfig::simulation (two Hosts in this process, loopback):\n"
      "  lossy   10 MB of reliable 64 KiB messages over a simulated 10 MB/s bottleneck with 40 ms of round\n"
      "          trip at 0%%, 1%% (target >= 0.70 of the bottleneck) and 5%% random loss; then the same\n"
      "          bottleneck with no lag, without and with 3 ms of jitter + 5%% reordering + 5%%\n"
      "          duplication (target >= 0.50 of the jitter-free rate); 20 s at most per case. BBR's\n"
      "          loss cases run with five seeds (which packets are lost), printing the median\n"
      "  tcp-share  (root; only when named) peerlink and a kernel TCP stream through one 80 Mbit/s\n"
      "          token-bucket bottleneck between two namespaces, with BBR and with CUBIC: each flow's\n"
      "          goodput and TCP's share (target >= 25%%: peerlink does not starve it)\n"
      "\n"
      "Two-process scenarios (this process is the client, a child process the server; over loopback, or\n"
      "between two network namespaces joined by a veth pair with --netns). Each compares with the kernel\n"
      "alone over the same path in the same run (baseline_value, ratio):\n"
      "  throughput  reliable encrypted goodput of 64 KiB messages, checked complete and in order, the\n"
      "              sender keeping at most 4 MiB queued (as TCP's socket buffer), then filling the Host's\n"
      "              send buffer; baselines a raw UDP blast of 1200-byte datagrams (sendmmsg/recvmmsg, no\n"
      "              GSO) and kernel TCP (targets >= 0.75 x each)\n"
      "  msgrate     reliable 64-byte messages per second (send_batch of 256); baseline a raw UDP blast of\n"
      "              64-byte datagrams (target >= 1,000,000/s)\n"
      "  rtt         32-byte reliable no-Nagle ping-pong, p50 and p99, the reply awaited with wait() +\n"
      "              receive() (defaults; with HostConfig::receive_on_wait off on both sides; with\n"
      "              HostConfig::wait_spin 200 us on both sides), and with message callbacks on the\n"
      "              service threads; baseline a raw UDP ping-pong\n"
      "              (target p50 <= raw p50 + 25 us, p99 <= 2 x raw p99); with wait() also the client\n"
      "              process's CPU use (cores) while it pings and then while it waits with nothing coming\n"
      "  connect     connect() to the first reliable message delivered at the server, p50 and p99 of\n"
      "              --samples (default 50) fresh client Hosts (target <= 2 x raw UDP RTT + 1 ms); with\n"
      "              the default address validation (under load), then with a server that always asks\n"
      "              for a cookie\n"
      "  memory      VmRSS per idle connection on each side with --connections (default 1000) connections;\n"
      "              baseline the core's heap bytes per idle connection\n"
      "\n"
      "Options:\n"
      "  --seconds S       measured window of each throughput-like run, and bound of latency runs (default "
      "3)\n"
      "  --connections N   connections of core-memory, memory and p2p-scale\n"
      "  --samples N       connect: fresh client Hosts (default 50); connect with --ice: fresh Host pairs\n"
      "                    per NAT pairing (default 15);\n"
      "                    xmpp-connect: connections and logins measured (default 40)\n"
      "  --message-size B  message size of core-throughput (default 65536)\n"
      "  --netns           run the two-process scenarios between two network namespaces (plb-<pid>-a with\n"
      "                    198.51.100.1, plb-<pid>-b with 198.51.100.2), created and deleted by the "
      "benchmark;\n"
      "                    needs root, else exits with status 77 (skipped)\n"
      "\n"
      "  --ice             with --netns: connect and throughput peer to peer through the NAT lab of the\n"
      "                    tests (namespaces behind nftables NAT routers, coturn for STUN/TURN, libnice "
      "ICE,\n"
      "                    both Hosts in this process, in-process signaling):\n"
      "                      connect     per pairing of {none, full-cone, port-restricted, symmetric,\n"
      "                                  udp-blocked}: connect() to the first reliable message delivered,\n"
      "                                  p50/p99 of --samples fresh Host pairs (default 15); targets p50 <= "
      "150\n"
      "                                  ms direct, 250 ms via TURN/UDP, 300 ms via TURN/TCP; baseline the\n"
      "                                  STUN round trip to coturn\n"
      "                      throughput  reliable 64 KiB goodput through the ICE path (none x none and\n"
      "                                  full-cone x port-restricted); baseline a raw UDP blast between the\n"
      "                                  same namespaces through the same NATs (target >= 0.70); for none x\n"
      "                                  none also against the Host's direct UDP path between the same "
      "peers\n"
      "                                  (no ICE): the ICE host path (target >= 0.90; medians of three\n"
      "                                  runs each, alternating) and a TURN/UDP relay\n"
      "                                  through the lab's coturn (target >= 0.50), with coturn's own\n"
      "                                  limit: ChannelData between two allocations at rising paced\n"
      "                                  rates, the most that came through\n"
      "\n"
      "Peer-to-peer at scale (both Hosts in this process, in-process signaling, ICE on the loopback):\n"
      "  p2p-scale     N connections at once (100, then 1000; or --connections): time until all are\n"
      "                connected (target 1000 within 10 s), resident memory and descriptors per connection\n"
      "                and side (target <= 64 KiB); baseline the same connections over direct UDP\n"
      "\n"
      "XMPP signaling (builds with the tests, Prosody installed; a Prosody of its own on the loopback):\n"
      "  xmpp-connect  connect() to the first message delivered between two Hosts logged in to Prosody,\n"
      "                p50/p99 of --samples connections (default 40); baseline in-process signaling in the\n"
      "                same run (targets p50 <= 100 ms and <= baseline + 20 ms); also the login (TLS + "
      "SCRAM\n"
      "                + bind, target p50 <= 200 ms) and the stanza bytes per setup per side\n"
      "\n"
      "LAN discovery (builds with the tests, root; LANs of its own in network namespaces):\n"
      "  lan-discover  3, then 20 peers start their beacons at once: time until every peer sees every\n"
      "                other, p50/p99 of --samples cold starts (default 10; target p50 <= 50 ms); baseline\n"
      "                one datagram from every peer to the mDNS group, until every peer has them all;\n"
      "                then the same with whole peers (Host + LanBeacon, lan-discover-hosts), and the\n"
      "                steady state's multicast datagrams a minute (lan-steady-multicast, target <= 2)\n"
      "  p2p-scale-lan p2p-scale with the LAN beacon as the signaling, between two hosts of a LAN;\n"
      "                baseline the same connections over direct UDP between them\n"
      "  lan-connect   start of a process (examples/lan_peer) to the echo of its first reliable message\n"
      "                to a peer it discovered, p50/p99 of --samples starts (default 10; target p50 <=\n"
      "                150 ms); baseline the same program started with --help\n"
      "\n"
      "With no scenario named, all run.\n");
}

struct Scenario {
  const char* name;
  std::function<void()> run;
};

// Runs each wanted scenario; a failure is reported and the others still run. Returns the exit status.
int run_all(const std::vector<Scenario>& scenarios, const std::set<std::string>& wanted) {
  int status = 0;
  for (const auto& s : scenarios) {
    if (!wanted.empty() && !wanted.count(s.name)) continue;
    try {
      s.run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "peerlink-bench: %s failed: %s\n", s.name, e.what());
      status = 1;
    }
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--role") == 0) return run_server_role(argc, argv);

  CoreOptions core;
  HostBenchOptions host;
  bool netns = false, ice = false, connections_given = false;
  size_t samples = 15;  // the --ice default; each other scenario has its own
  bool samples_given = false;
  std::set<std::string> wanted;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "peerlink-bench: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--seconds") {
      core.seconds = host.seconds = std::atof(value("--seconds"));
    } else if (a == "--connections") {
      core.connections = host.connections = size_t(std::atol(value("--connections")));
      connections_given = true;
    } else if (a == "--message-size") {
      core.message_size = size_t(std::atol(value("--message-size")));
    } else if (a == "--netns") {
      netns = true;
    } else if (a == "--ice") {
      ice = true;
    } else if (a == "--samples") {
      samples = size_t(std::atol(value("--samples")));
      samples_given = true;
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "peerlink-bench: unknown option %s\n", a.c_str());
      usage();
      return 2;
    } else {
      wanted.insert(a);
    }
  }
  if (core.seconds <= 0 || core.connections == 0 || core.message_size == 0) {
    std::fprintf(stderr, "peerlink-bench: --seconds, --connections and --message-size must be positive\n");
    return 2;
  }
  if (host.seconds > 600) {
    std::fprintf(stderr, "peerlink-bench: --seconds is at most 600: every load run is bounded\n");
    return 2;
  }
  if (!connections_given) host.connections = 1000;
  if (samples_given && samples == 0) {
    std::fprintf(stderr, "peerlink-bench: --samples must be positive\n");
    return 2;
  }
  if (samples_given) host.connect_samples = samples;

  const std::vector<Scenario> core_scenarios = {
      {"core-throughput", [&] { run_core_throughput(core, true); }},
      {"core-throughput-chacha", [&] { run_core_throughput(core, false); }},
      {"core-throughput-owned", [&] { run_core_throughput_owned(core); }},
      {"core-memory", [&] { run_core_memory(core); }},
      {"core-handshake", [&] { run_core_handshake(core); }},
  };
  const std::vector<Scenario> xmpp_scenarios = {
#ifdef PEERLINK_BENCH_XMPP
      {"xmpp-connect",
       [&] {
         XmppBenchOptions x;
         if (samples_given) x.samples = samples;
         run_xmpp_connect(x);
       }},
#endif
#ifdef PEERLINK_BENCH_LAN
      {"lan-discover",
       [&] {
         LanBenchOptions l;
         if (samples_given) l.samples = samples;
         run_lan_discover(l);
       }},
      {"lan-connect",
       [&] {
         LanBenchOptions l;
         if (samples_given) l.samples = samples;
         run_lan_connect(l, PEERLINK_LAN_PEER_PROGRAM);
       }},
      {"p2p-scale-lan",
       [&] {
         P2PScaleOptions p;
         if (connections_given) p.connections = {core.connections};
         if (!run_p2p_scale_lan(p)) throw std::runtime_error("not every connection was made");
       }},
#endif
  };
  const std::vector<Scenario> scale_scenarios = {
      {"p2p-scale",
       [&] {
         P2PScaleOptions p;
         if (connections_given) p.connections = {core.connections};
         if (!run_p2p_scale(p)) throw std::runtime_error("not every connection was made");
       }},
  };
  const std::vector<Scenario> lossy_scenarios = {
      {"lossy", [&] { run_lossy(LossyBenchOptions{}); }},
  };
  // Only when named: it needs root, and makes its own namespaces.
  const std::vector<Scenario> share_scenarios = {
      {"tcp-share", [&] { run_tcp_share(host.seconds); }},
  };
  const std::vector<Scenario> host_scenarios = {
      {"throughput", [&] { run_throughput(host); }},
      {"msgrate", [&] { run_msgrate(host); }},
      {"rtt", [&] { run_rtt(host); }},
      {"connect", [&] { run_connect(host); }},
      {"memory", [&] { run_memory(host); }},
  };
  bool any_host = wanted.empty();
  for (const auto& s : wanted) {
    bool known = false;
    for (const auto* list : {&core_scenarios, &host_scenarios, &xmpp_scenarios, &scale_scenarios,
                             &lossy_scenarios, &share_scenarios})
      for (const auto& k : *list)
        known |= s == k.name;
    if (!known) {
      std::fprintf(stderr, "peerlink-bench: unknown scenario '%s'\n", s.c_str());
      usage();
      return 2;
    }
    for (const auto& k : host_scenarios)
      any_host |= s == k.name;
  }
  if (netns && geteuid() != 0) {
    std::fprintf(
        stderr,
        "peerlink-bench: --netns needs root to create network namespaces; skipped (exit status 77)\n");
    return kExitSkip;
  }

  if (ice) {
    if (!netns) {
      std::fprintf(stderr, "peerlink-bench: --ice needs --netns (it runs in the NAT lab's namespaces)\n");
      return 2;
    }
    for (const auto& s : wanted) {
      if (s != "connect" && s != "throughput") {
        std::fprintf(stderr, "peerlink-bench: --ice runs connect and throughput only, not '%s'\n", s.c_str());
        return 2;
      }
    }
#ifdef PEERLINK_BENCH_P2P
    std::string why;
    if (!peerlink::netlab::have_root_and_tools(&why)) {
      std::fprintf(stderr, "peerlink-bench: %s; skipped (exit status 77)\n", why.c_str());
      return kExitSkip;
    }
    P2PBenchOptions p2p;
    p2p.seconds = host.seconds;
    p2p.samples = samples;
    const std::vector<Scenario> p2p_scenarios = {
        {"connect", [&] { run_p2p_connect(p2p); }},
        {"throughput", [&] { run_p2p_throughput(p2p); }},
    };
    return run_all(p2p_scenarios, wanted);
#else
    std::fprintf(stderr, "peerlink-bench: --ice needs a build with the tests (the NAT lab lives there)\n");
    return 2;
#endif
  }

  teardown::install_signal_handlers();
  int status = run_all(core_scenarios, wanted);
  if (!netns) status = std::max(status, run_all(xmpp_scenarios, wanted));
  if (!netns) status = std::max(status, run_all(scale_scenarios, wanted));
  if (!netns) status = std::max(status, run_all(lossy_scenarios, wanted));
  if (!netns && wanted.count("tcp-share")) {
    if (geteuid() != 0) {
      std::fprintf(stderr, "peerlink-bench: tcp-share needs root to create network namespaces; skipped\n");
      status = std::max(status, kExitSkip);
    } else {
      status = std::max(status, run_all(share_scenarios, wanted));
    }
  }
  if (!any_host) return status;
  if (!netns) return std::max(status, run_all(host_scenarios, wanted));

  std::string why;
  std::unique_ptr<NamespacePair> pair = NamespacePair::create(&why);
  if (!pair) {
    std::fprintf(stderr, "peerlink-bench: cannot build the network namespaces: %s\n", why.c_str());
    return 1;
  }
  host.path.name = "netns";
  host.path.client_ip = NamespacePair::kClientIp;
  host.path.server_ip = NamespacePair::kServerIp;
  host.path.server_netns_fd = pair->server_fd();
  try {
    // This thread, the Host threads it starts and every socket it opens live in the client namespace.
    ScopedNamespace in_client(pair->client_fd());
    status = std::max(status, run_all(host_scenarios, wanted));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "peerlink-bench: %s\n", e.what());
    status = 1;
  }
  return status;
}
