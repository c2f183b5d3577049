// Test harness on the simulator: two endpoints, a connection between them, and bulk transfers checked
// end to end with SHA-256.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
           protocol::to_string(c->state()) + " reason " + std::to_string(c->end_reason()) + " " +
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

}  // namespace peerlink::sim
