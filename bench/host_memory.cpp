// memory: VmRSS per idle connection on both sides, N connections from one client Host to one server Host,
// relative to each process with its Host and one connection.
#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench_output.hpp"
#include "core_scenarios.hpp"
#include "host_common.hpp"
#include "host_scenarios.hpp"
#include "measure.hpp"

namespace peerlink::bench {

namespace {

constexpr auto kSettle = std::chrono::milliseconds(500);  // handshake confirmations and first acks

struct Rss {
  size_t client = 0;
  size_t server = 0;
};

// Asks the server until it has `connected` connections up (or timeout_seconds pass); its RSS and ours.
Rss sample_rss(ServerProcess& server, Host& host, size_t connected, double timeout_seconds) {
  int64_t deadline = monotonic_ns() + int64_t(timeout_seconds * 1e9);
  for (;;) {
    server.send("rss");
    ControlMessage m = server.expect("rss", 10.0);
    if (m.u64("connected") >= connected) return {vm_rss_bytes(), size_t(m.u64("bytes"))};
    if (monotonic_ns() > deadline)
      throw std::runtime_error("the server has " + m.field("connected") + " connections up, not " +
                               std::to_string(connected));
    host.wait(std::chrono::milliseconds(50));
    host.run_callbacks();
  }
}

void settle(Host& host) {
  int64_t end = monotonic_ns() + std::chrono::nanoseconds(kSettle).count();
  while (monotonic_ns() < end) {
    host.wait(std::chrono::milliseconds(50));
    host.run_callbacks();
  }
}

}  // namespace

void run_memory(const HostBenchOptions& o) {
  size_t n = std::max<size_t>(o.connections, 2);
  ServerProcess server(o.path, "host-memory", {}, 300);
  Address to = server_address(o.path, server.ready());
  PublicKey key = key_from_hex(server.ready().field("key"));
  Rss one, all;
  {
    Host host(bench_host_config(o.path.client_ip));
    size_t connected = 0, closed = 0;
    std::string first_end;
    host.set_connection_callback([&](const ConnectionEvent& e) {
      if (e.kind == ConnectionEventKind::kConnected) ++connected;
      if (e.kind == ConnectionEventKind::kClosed && closed++ == 0)
        first_end = to_string(EndReason(e.info.end_reason)) + std::string(" (") + e.info.end_debug + ")";
    });
    connect_and_wait(host, to, key, 10);
    settle(host);
    one = sample_rss(server, host, 1, 10);

    ConnectOptions options;
    options.expected_key = key;
    for (size_t i = 1; i < n; ++i) {
      Result<ConnectionHandle> c = host.connect(to, options);
      if (!c) throw std::runtime_error("connect #" + std::to_string(i + 1) + ": " + c.error().message);
    }
    int64_t deadline = monotonic_ns() + int64_t(60e9);
    connected = 0;  // the first connection's event was delivered while settling: count the new ones
    while (connected < n - 1 && closed == 0 && monotonic_ns() < deadline) {
      host.wait(std::chrono::milliseconds(20));
      host.run_callbacks();
    }
    if (closed > 0)
      throw std::runtime_error(std::to_string(closed) + " connections failed, the first: " + first_end);
    if (connected < n - 1)
      throw std::runtime_error("only " + std::to_string(connected + 1) + " of " + std::to_string(n) +
                               " connections up after 60 s");
    settle(host);
    all = sample_rss(server, host, n, 30);
  }
  // After the Host run, so that its heap does not reuse what the core measurement freed.
  CoreMemoryResult core = measure_core_memory(n);
  auto per_connection = [&](size_t before, size_t after) {
    return double(after > before ? after - before : 0) / double(n - 1);
  };
  struct Side {
    const char* name;
    size_t before, after;
  };
  for (const Side& s : {Side{"server", one.server, all.server}, Side{"client", one.client, all.client}}) {
    Figure f{"memory", per_connection(s.before, s.after), "bytes/connection", {}};
    f.add("side", s.name)
        .compare("core-memory (heap per idle connection, sans-I/O core)", core.heap_per_connection)
        .add("path", o.path.name)
        .add_count("connections", n)
        .add_count("rss_with_one_connection", s.before)
        .add_count("rss_with_all_connections", s.after);
    f.print();
  }
}

}  // namespace peerlink::bench
