// Test harness on the simulator: two endpoints, a connection between them, and bulk transfers checked
// end to end with SHA-256.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/network_sim.hpp"

namespace peerlink::sim {

using protocol::ConnectionId;
using protocol::ConnectionState;
using protocol::EndpointConfig;
using protocol::Event;
using protocol::EventKind;
using protocol::kNever;
using std::chrono::milliseconds;
using std::chrono::seconds;

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void update(const uint8_t* d, size_t n) { EVP_DigestUpdate(ctx_, d, n); }
  std::string hex() {
    uint8_t md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) {
      s += digits[md[i] >> 4];
      s += digits[md[i] & 15];
    }
    return s;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Seeds for a test: the fixed one, or PEERLINK_SIM_SEED to reproduce a failure.
inline uint64_t test_seed(uint64_t fixed) {
  if (const char* s = std::getenv("PEERLINK_SIM_SEED")) return std::strtoull(s, nullptr, 0);
  return fixed;
}

// How many random seeds soak tests run (PEERLINK_SOAK_SEEDS, default `normal`).
inline int soak_seeds(int normal) {
  if (const char* s = std::getenv("PEERLINK_SOAK_SEEDS")) return std::max(1, std::atoi(s));
  return normal;
}

struct PairOptions {
  EndpointConfig client;
  EndpointConfig server;
  LinkConfig client_to_server;
  LinkConfig server_to_client;
  bool ik = true;  // client knows the server's key
};

class SimPair {
 public:
  SimPair(uint64_t seed, const PairOptions& o)
      : net(seed), client_id(Identity::generate()), server_id(Identity::generate()) {
    client = net.add_node(o.client, client_id);
    server = net.add_node(o.server, server_id);
    net.set_link(client, server, o.client_to_server);
    net.set_link(server, client, o.server_to_client);
    ik = o.ik;
    std::printf("[ sim ] seed %llu (PEERLINK_SIM_SEED=%llu reproduces it)\n", (unsigned long long)seed,
                (unsigned long long)seed);
  }

  // Starts the connection; the server accepts every request.
  void start() {
    std::optional<PublicKey> key;
    if (ik) key = server_id.public_key();
    cc = net.endpoint(client).connect(net.now(), net.address(server), key);
  }

  // Handles events on both sides: accept incoming, remember states and end reasons.
  void pump_events() {
    Event e;
    while (net.endpoint(server).poll_event(e)) {
      if (e.kind == EventKind::kIncomingRequest) {
        sc = e.connection;
        if (accept_incoming) {
          net.endpoint(server).accept(e.connection, net.now());
        } else {
          net.endpoint(server).reject(e.connection, reject_reason, net.now());
        }
      } else if (e.connection == sc) {
        server_state = e.state;
        server_reason = e.reason;
      }
    }
    while (net.endpoint(client).poll_event(e)) {
      if (e.connection == cc) {
        client_state = e.state;
        client_reason = e.reason;
        client_debug = e.debug;
      }
    }
  }

  bool connect(protocol::Duration limit = seconds(30)) {
    start();
    return net.run_for(
        limit,
        [&] {
          return client_state == ConnectionState::kConnected && server_state == ConnectionState::kConnected;
        },
        [&] { pump_events(); });
  }

  std::string where() {
    std::string s = "seed " + std::to_string(net.seed()) + " (PEERLINK_SIM_SEED reproduces it)";
    for (auto [node, id] : {std::pair{client, cc}, std::pair{server, sc}}) {
      const auto* c = net.endpoint(node).connection(id);
      if (!c) {
        s += "; conn " + std::to_string(id) + " gone";
        continue;
      }
      auto st = c->stats(net.now());
      s += std::string("; ") + (node == client ? "client" : "server") + " " +
           peerlink::to_string(c->state()) + " reason " + std::to_string(c->end_reason()) + " " +
           c->end_debug() + " cwnd " + std::to_string(st.congestion_window) + " inflight " +
           std::to_string(st.bytes_in_flight) + " sent " + std::to_string(st.packets_sent) + " recv " +
           std::to_string(st.packets_received) + " lost " + std::to_string(st.packets_lost) + " queued " +
           std::to_string(st.queued_bytes) + " rtt_us " +
           std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(st.rtt_smoothed).count()) +
           " next_deadline_ms " +
           std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   (c->next_deadline() == protocol::kNever ? net.now() : c->next_deadline()) - net.now())
                   .count()) +
           " [" + c->debug_string() + "]";
    }
    return s;
  }

  NetworkSim net;
  Identity client_id, server_id;
  size_t client = 0, server = 0;
  bool ik = true;
  ConnectionId cc = 0, sc = 0;
  bool accept_incoming = true;
  uint32_t reject_reason = 1000;
  ConnectionState client_state = ConnectionState::kConnecting;
  ConnectionState server_state = ConnectionState::kConnecting;
  uint32_t client_reason = 0, server_reason = 0;
  std::string client_debug;
};

struct TransferResult {
  bool completed = false;
  std::string sent_hash, received_hash;
  uint64_t bytes = 0;
  protocol::Duration elapsed{};
};

// Sends total bytes of deterministic pseudo-random data from client to server as reliable messages of
// message_size bytes, keeping at most `window` bytes queued; the server reads everything.
inline TransferResult bulk_transfer(SimPair& p, uint64_t total, size_t message_size, protocol::Duration limit,
                                    uint64_t window = 4u << 20,
                                    const std::function<void()>& extra_step = {}) {
  TransferResult r;
  Sha256 sent_hash, recv_hash;
  crypto::SeededRandom data_rng(p.net.seed() ^ 0x5eed);
  std::vector<uint8_t> msg(message_size);
  uint64_t sent = 0, received = 0;
  Instant start = p.net.now();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  auto step = [&] {
    p.pump_events();
    while (sent < total) {
      auto st = c.stats(p.cc, p.net.now());
      if (!st || st->queued_bytes > window) break;
      size_t n = size_t(std::min<uint64_t>(message_size, total - sent));
      data_rng.fill(msg.data(), n);
      if (c.send(p.cc, msg.data(), n, protocol::send_flags::kReliable, 0, p.net.now()) !=
          protocol::SendResult::kOk)
        break;
      sent_hash.update(msg.data(), n);
      sent += n;
    }
    protocol::ReceivedMessage m;
    while (s.receive(p.sc, m)) {
      recv_hash.update(m.data.data(), m.data.size());
      received += m.data.size();
    }
    if (extra_step) extra_step();
  };
  r.completed = p.net.run_for(
      limit, [&] { return received >= total; }, step);
  r.elapsed = p.net.now() - start;
  r.bytes = received;
  r.sent_hash = sent_hash.hex();
  r.received_hash = recv_hash.hex();
  return r;
}

// Two clients, with configurations c1 and c2, each keep up to 2 MiB of reliable 64 KiB messages queued
// toward one server for `total`. Both uploads share one bottleneck (`up`, one shared queue); acknowledgements
// come back over `down`. Returns the bytes the server received from each client after `warmup`.
inline std::array<uint64_t, 2> two_flows(uint64_t seed, const EndpointConfig& c1_cfg,
                                         const EndpointConfig& c2_cfg, const LinkConfig& up,
                                         const LinkConfig& down, protocol::Duration warmup,
                                         protocol::Duration total) {
  NetworkSim net(seed);
  Identity server_id = Identity::generate();
  size_t server = net.add_node(EndpointConfig{}, server_id);
  size_t c1 = net.add_node(c1_cfg, Identity::generate());
  size_t c2 = net.add_node(c2_cfg, Identity::generate());
  net.set_link(c1, server, up, /*shared_queue=*/1);
  net.set_link(c2, server, up, /*shared_queue=*/1);
  net.set_link(server, c1, down);
  net.set_link(server, c2, down);
  ConnectionId k1 = net.endpoint(c1).connect(net.now(), net.address(server), server_id.public_key());
  ConnectionId k2 = net.endpoint(c2).connect(net.now(), net.address(server), server_id.public_key());
  std::vector<uint8_t> msg(64 * 1024, 0xab);
  std::map<ConnectionId, uint64_t> received;  // by server-side connection id
  std::map<ConnectionId, size_t> origin;
  const Instant measure_from = net.now() + warmup;
  uint64_t at_start[2] = {0, 0};
  bool started = false;
  auto step = [&] {
    Event e;
    while (net.endpoint(server).poll_event(e)) {
      if (e.kind == EventKind::kIncomingRequest) {
        net.endpoint(server).accept(e.connection, net.now());
        origin[e.connection] = e.remote_key == net.endpoint(c1).public_key() ? 0 : 1;
      }
    }
    for (auto [node, conn] : {std::pair{c1, k1}, std::pair{c2, k2}}) {
      while (net.endpoint(node).poll_event(e)) {
      }
      for (;;) {
        auto st = net.endpoint(node).stats(conn, net.now());
        if (!st || st->queued_bytes > (2u << 20)) break;
        if (net.endpoint(node).send(conn, msg.data(), msg.size(), protocol::send_flags::kReliable, 0,
                                    net.now()) != protocol::SendResult::kOk) {
          break;
        }
      }
    }
    protocol::ReceivedMessage m;
    while (net.endpoint(server).receive_any(m))
      received[m.connection] += m.data.size();
    if (!started && net.now() >= measure_from) {
      started = true;
      for (auto& [id, bytes] : received)
        at_start[origin[id]] = bytes;
    }
  };
  net.run_for(total, {}, step);
  std::array<uint64_t, 2> got{0, 0};
  for (auto& [id, bytes] : received)
    got[origin[id]] = bytes - at_start[origin[id]];
  return got;
}

}  // namespace peerlink::sim

// --- Helpers for message-level checks (appended; used by the *_sim_test.cpp behaviour files) ---------------
#include <cstring>

namespace peerlink::sim {

// Self-describing message content: the first 8 bytes carry `tag` (little endian, cut short for tiny
// messages), the rest is a pattern derived from (tag, position). A message that is truncated, shifted,
// spliced from two messages or delivered under the wrong tag fails check_message.
inline void fill_message(uint64_t tag, uint8_t* out, size_t size) {
  for (size_t i = 0; i < size && i < 8; ++i)
    out[i] = uint8_t(tag >> (8 * i));
  for (size_t block = 1; block * 8 < size; ++block) {
    uint64_t z = tag * 0x9e3779b97f4a7c15ull + block;  // splitmix64 of (tag, block)
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (size_t i = 0; i < 8 && block * 8 + i < size; ++i)
      out[block * 8 + i] = uint8_t(z >> (8 * i));
  }
}

inline std::vector<uint8_t> make_message(uint64_t tag, size_t size) {
  std::vector<uint8_t> m(size);
  fill_message(tag, m.data(), size);
  return m;
}

// The tag a message of at least 8 bytes claims to carry.
inline uint64_t message_tag(const std::vector<uint8_t>& m) {
  uint64_t tag = 0;
  for (size_t i = 0; i < 8 && i < m.size(); ++i)
    tag |= uint64_t(m[i]) << (8 * i);
  return tag;
}

inline bool check_message(uint64_t tag, const std::vector<uint8_t>& m, size_t expected_size) {
  if (m.size() != expected_size) return false;
  static thread_local std::vector<uint8_t> want;
  want.resize(expected_size);
  fill_message(tag, want.data(), expected_size);
  return expected_size == 0 || std::memcmp(want.data(), m.data(), expected_size) == 0;
}

// The same impairment on both directions of a pair.
template <typename F>
inline void both_ways(PairOptions& o, F&& f) {
  f(o.client_to_server);
  f(o.server_to_client);
}

// Like SimPair::pump_events (accepts incoming, tracks states) but also keeps every state event in order.
inline void pump_events_logged(SimPair& p, std::vector<Event>& client_log, std::vector<Event>& server_log) {
  Event e;
  while (p.net.endpoint(p.server).poll_event(e)) {
    if (e.kind == EventKind::kIncomingRequest) {
      p.sc = e.connection;
      p.net.endpoint(p.server).accept(e.connection, p.net.now());
    } else if (e.connection == p.sc) {
      p.server_state = e.state;
      p.server_reason = e.reason;
      server_log.push_back(e);
    }
  }
  while (p.net.endpoint(p.client).poll_event(e)) {
    if (e.connection == p.cc) {
      p.client_state = e.state;
      p.client_reason = e.reason;
      p.client_debug = e.debug;
      client_log.push_back(e);
    }
  }
}

// Starts the connection and runs until the client is connected and the server has its side, logging every
// event on both; false (with the state in p.where()) if that takes longer than limit.
inline bool connect_logged(SimPair& p, std::vector<Event>& client_log, std::vector<Event>& server_log,
                           protocol::Duration limit = seconds(10)) {
  p.start();
  return p.net.run_for(
      limit, [&] { return p.client_state == ConnectionState::kConnected && p.sc != 0; },
      [&] { pump_events_logged(p, client_log, server_log); });
}

}  // namespace peerlink::sim
