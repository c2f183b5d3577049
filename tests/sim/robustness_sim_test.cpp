// Hostile input: garbage, truncated, replayed and forged datagrams thrown at both endpoints, during the
// handshake and during a transfer. Nothing may break the connection or the data, every bad datagram is
// counted exactly once in the right place, and no forgery may burn a packet number the peer will use.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::PacketKind;

constexpr size_t kNobody = 7;  // a node index with no endpoint: answers to it are dropped

uint64_t stateless_counters(const protocol::EndpointCounters& c) {
  // Exactly one of these counts each datagram that reaches no connection (stateless_dropped is extra).
  return c.invalid_datagrams + c.unknown_connection + c.wrong_source + c.retries_sent + c.rejects_sent +
         c.bad_cookies + c.handshake_failures;
}

std::vector<uint8_t> garbage(crypto::SeededRandom& rng) {
  std::vector<uint8_t> g(1 + rng.next_u32() % 1500);
  rng.fill(g.data(), g.size());
  switch (rng.next_u32() % 3) {
    case 0:
      g[0] = uint8_t(0x40 | (g[0] & 0x3f));
      break;  // looks like a data packet
    case 1:
      g[0] = uint8_t(0x80 + g[0] % 5);
      break;  // looks like a handshake packet
    default:
      break;
  }
  return g;
}

// What was thrown at one endpoint, to compare with what it counted.
struct Thrown {
  uint64_t garbage = 0, truncated_short = 0, truncated_long = 0, replays = 0, forged = 0;
};

TEST(HostileInput, GarbageTruncatedReplayedAndForgedDatagramsAtBothEnds_TransferExactAndEachCountedOnce) {
  PairOptions o;
  both_ways(o, [](LinkConfig& l) {
    l.delay = milliseconds(5);
    l.loss = 0.01;
    l.bandwidth_bps = 100'000'000;
    l.queue_bytes = 500'000;
  });
  // Keys roll during the attack too.
  o.client.connection.key_update_packets = o.server.connection.key_update_packets = 300;
  SimPair p(test_seed(901), o);
  // Capture from the start: handshake packets for replay, data packets of both directions.
  std::vector<std::vector<uint8_t>> handshake, data[2];  // data[0]: client to server, data[1]: back
  bool capturing = true;  // the tap sees injected datagrams too: stop before injecting any
  p.net.set_tap([&](size_t from, size_t to, const std::vector<uint8_t>& d) {
    if (!capturing || (to != p.client && to != p.server)) return;
    if (from != p.client && from != p.server) return;
    PacketKind k = protocol::peek_packet_kind(d.data(), d.size());
    if (k == PacketKind::kData) {
      auto& v = data[from == p.client ? 0 : 1];
      if (v.size() < 400) v.push_back(d);
    } else if (handshake.size() < 20) {
      handshake.push_back(d);
    }
  });
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint* ep[2] = {&p.net.endpoint(p.server), &p.net.endpoint(p.client)};  // targets
  ConnectionId conn[2] = {p.sc, p.cc};
  size_t target_node[2] = {p.server, p.client}, source_node[2] = {p.client, p.server};
  protocol::ConnectionStats before[2] = {*ep[0]->stats(p.sc, p.net.now()), *ep[1]->stats(p.cc, p.net.now())};
  uint64_t counters_before[2] = {stateless_counters(ep[0]->counters()),
                                 stateless_counters(ep[1]->counters())};
  Thrown thrown[2];
  crypto::SeededRandom rng(p.net.seed() ^ 0xbad);
  Instant next_batch = p.net.now();
  int batches = 0;
  auto attack = [&] {
    if (capturing && data[0].size() >= 200 && data[1].size() >= 200) capturing = false;
    if (capturing || p.net.now() < next_batch || batches >= 300) return;
    next_batch = p.net.now() + milliseconds(1);  // 300 batches in 0.3 s: the transfer takes longer
    ++batches;
    for (int t = 0; t < 2; ++t) {
      const auto& pool = data[t];
      size_t to = target_node[t], from = source_node[t];
      // Garbage, from nobody.
      p.net.inject(kNobody, to, garbage(rng));
      ++thrown[t].garbage;
      // An exact replay, from the peer's address and from elsewhere.
      const std::vector<uint8_t>& old = pool[rng.next_u32() % pool.size()];
      p.net.inject(from, to, old);
      p.net.inject(kNobody, to, old);
      thrown[t].replays += 2;
      // A truncated copy.
      std::vector<uint8_t> cut(old.begin(), old.begin() + std::ptrdiff_t(rng.next_u32() % old.size()));
      (cut.size() < protocol::kDataHeaderSize + protocol::kAeadTagSize ? thrown[t].truncated_short
                                                                       : thrown[t].truncated_long)++;
      p.net.inject(from, to, std::move(cut));
      // A forgery for the live connection: real header bytes with a packet number the peer is about to
      // use, and a body of noise (the AEAD must reject it without marking that number as seen).
      std::vector<uint8_t> forged = old;
      protocol::DataHeader h;
      ASSERT_TRUE(protocol::decode_data_header(forged.data(), forged.size(), h));
      h.truncated_pn = uint32_t(p.net.endpoint(from).stats(conn[1 - t], p.net.now())->packets_sent + 5 +
                                rng.next_u32() % 100);
      h.key_phase = rng.next_u32() % 2;
      protocol::encode_data_header(h, forged.data());
      rng.fill(forged.data() + protocol::kDataHeaderSize, forged.size() - protocol::kDataHeaderSize);
      p.net.inject(rng.next_u32() % 2 ? from : kNobody, to, std::move(forged));
      ++thrown[t].forged;
    }
    // Now and then an old handshake packet again.
    if (batches % 10 == 0 && !handshake.empty()) {
      const std::vector<uint8_t>& hs = handshake[rng.next_u32() % handshake.size()];
      bool to_server = protocol::peek_packet_kind(hs.data(), hs.size()) == PacketKind::kInitiation ||
                       protocol::peek_packet_kind(hs.data(), hs.size()) == PacketKind::kFinish;
      p.net.inject(to_server ? p.client : p.server, to_server ? p.server : p.client, hs);
    }
  };
  TransferResult r = bulk_transfer(p, 10'000'000, 30'000, seconds(300), 2u << 20, attack);
  p.net.run_for(milliseconds(100));  // the last injections land
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash) << p.where();
  EXPECT_EQ(batches, 300) << "the attack lasted the whole transfer";
  EXPECT_EQ(p.client_state, ConnectionState::kConnected) << p.where();
  EXPECT_EQ(p.server_state, ConnectionState::kConnected) << p.where();
  for (int t = 0; t < 2; ++t) {
    SCOPED_TRACE(t == 0 ? "server" : "client");
    protocol::ConnectionStats after = *ep[t]->stats(conn[t], p.net.now());
    uint64_t dup = after.packets_duplicate - before[t].packets_duplicate;
    uint64_t auth = after.packets_rejected_auth - before[t].packets_rejected_auth;
    uint64_t stateless = stateless_counters(ep[t]->counters()) - counters_before[t];
    const Thrown& th = thrown[t];
    std::printf(
        "[ sim ] %s: garbage %llu, truncated %llu+%llu, replays %llu, forged %llu -> duplicate %llu, "
        "rejected_auth %llu, endpoint counters %llu\n",
        t == 0 ? "server" : "client", (unsigned long long)th.garbage, (unsigned long long)th.truncated_short,
        (unsigned long long)th.truncated_long, (unsigned long long)th.replays, (unsigned long long)th.forged,
        (unsigned long long)dup, (unsigned long long)auth, (unsigned long long)stateless);
    EXPECT_GT(th.garbage, 100u);
    EXPECT_EQ(stateless, th.garbage + th.truncated_short) << p.where();
    // Replays and long truncated copies are old packet numbers; a forgery is rejected by the AEAD (or, if
    // the real packet with that number came first, as a duplicate). A forgery that burned a number would
    // make the real packet count as a duplicate too, and break this equality.
    EXPECT_EQ(dup + auth, th.replays + th.truncated_long + th.forged) << p.where();
    EXPECT_GE(dup, th.replays + th.truncated_long);
    EXPECT_GT(auth, th.forged / 2) << "most forgeries carried a fresh packet number";
  }
  // Replays from another address did not move the connection there.
  EXPECT_EQ(ep[0]->connection(p.sc)->peer_address(), p.net.address(p.client));
  EXPECT_EQ(ep[1]->connection(p.cc)->peer_address(), p.net.address(p.server));
}

TEST(HostileInput, GarbageAndReplaysDuringTheHandshake_BothPatternsStillConnect) {
  for (bool ik : {true, false}) {
    SCOPED_TRACE(ik ? "IK" : "XX");
    PairOptions o;
    o.ik = ik;
    both_ways(o, [](LinkConfig& l) { l.delay = milliseconds(10); });
    SimPair p(test_seed(902) + (ik ? 0 : 1), o);
    std::vector<std::vector<uint8_t>> seen;
    p.net.set_tap([&](size_t from, size_t, const std::vector<uint8_t>& d) {
      if (from <= 1 && seen.size() < 50) seen.push_back(d);
    });
    crypto::SeededRandom rng(p.net.seed());
    Instant next_noise = p.net.now();
    p.start();
    ASSERT_TRUE(p.net.run_for(
        seconds(10),
        [&] {
          return p.client_state == ConnectionState::kConnected &&
                 p.server_state == ConnectionState::kConnected;
        },
        [&] {
          p.pump_events();
          if (p.net.now() < next_noise) return;  // injecting at every step would never let time advance
          next_noise = p.net.now() + milliseconds(1);
          // Every millisecond: noise at both ends, from the peer's address and from nobody; copies (whole and
          // cut) of everything seen so far.
          for (size_t to : {p.client, p.server}) {
            size_t peer = to == p.client ? p.server : p.client;
            p.net.inject(rng.next_u32() % 2 ? peer : kNobody, to, garbage(rng));
            if (!seen.empty()) {
              std::vector<uint8_t> old = seen[rng.next_u32() % seen.size()];
              if (rng.next_u32() % 2) old.resize(rng.next_u32() % old.size());
              p.net.inject(peer, to, std::move(old));
            }
          }
        }))
        << p.where();
    EXPECT_EQ(p.net.endpoint(p.server).connection_count(), 1u) << p.where();
    EXPECT_EQ(*p.net.endpoint(p.client).connection(p.cc)->remote_key(), p.server_id.public_key());
    TransferResult r = bulk_transfer(p, 1'000'000, 10'000, seconds(30));
    ASSERT_TRUE(r.completed) << p.where();
    EXPECT_EQ(r.sent_hash, r.received_hash);
  }
}

}  // namespace
}  // namespace peerlink::sim
