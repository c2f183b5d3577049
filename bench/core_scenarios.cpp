#include "core_scenarios.hpp"

#include <malloc.h>

#include <algorithm>

#include <atomic>
#include <thread>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_output.hpp"
#include "measure.hpp"
#include "transport/crypto/aead.hpp"
#include "transport/crypto/random.hpp"
#include "transport/crypto/x25519.hpp"
#include "transport/protocol/endpoint.hpp"

namespace peerlink::bench {

using protocol::Endpoint;
using protocol::Instant;
using protocol::PathAddress;

namespace {

Instant now() {
  return Instant(
      std::chrono::duration_cast<protocol::Duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

// Delivers every pending datagram from `from` to `to`; returns how many.
size_t pump(Endpoint& from, const PathAddress& from_addr, Endpoint& to, Instant t, uint8_t* buf, size_t cap) {
  size_t n = 0;
  PathAddress dest;
  while (size_t len = from.poll_transmit(t, buf, cap, dest)) {
    to.handle_datagram(t, from_addr, buf, len);
    ++n;
  }
  return n;
}

void service(Endpoint& a, const PathAddress& aa, Endpoint& b, const PathAddress& ba, Instant t, uint8_t* buf,
             size_t cap) {
  if (a.next_timeout() <= t) a.handle_timeout(t);
  if (b.next_timeout() <= t) b.handle_timeout(t);
  pump(a, aa, b, t, buf, cap);
  pump(b, ba, a, t, buf, cap);
}

// Accepts every incoming request on ep.
void accept_all(Endpoint& ep, Instant t) {
  protocol::Event e;
  while (ep.poll_event(e)) {
    if (e.kind == protocol::EventKind::kIncomingRequest) ep.accept(e.connection, t);
  }
}

size_t heap_in_use() {
  return mallinfo2().uordblks;
}

size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * 4096;
}

}  // namespace

namespace {

// Single-producer single-consumer ring of datagrams between the two endpoint threads. Each side makes what
// it did visible once per batch (publish(), release()), as sendmmsg and recvmmsg hand the kernel a batch.
// Stored per datagram while the other core polled it, the shared index cost 0.4-0.6 us per datagram on
// a 2-core VM, where all the rest of the sender's work on a packet then took 0.85 us.
class DatagramRing {
 public:
  static constexpr size_t kSlots = 1024;
  static constexpr size_t kSlotSize = 1536;

  // Producer: the next free slot or null; push() fills it, publish() shows the pushed ones.
  uint8_t* producer_slot() {
    if (head_local_ - tail_cache_ >= kSlots) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head_local_ - tail_cache_ >= kSlots) return nullptr;
    }
    return slots_[head_local_ % kSlots].data;
  }
  void push(size_t len) { slots_[head_local_++ % kSlots].len = len; }
  void publish() {
    if (head_local_ != head_.load(std::memory_order_relaxed))
      head_.store(head_local_, std::memory_order_release);
  }
  // Consumer: the next datagram or null; consumed() after use, release() to hand the slots back.
  uint8_t* consumer_slot(size_t& len) {
    if (tail_local_ == head_cache_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail_local_ == head_cache_) return nullptr;
    }
    len = slots_[tail_local_ % kSlots].len;
    return slots_[tail_local_ % kSlots].data;
  }
  void consumed() { ++tail_local_; }
  void release() {
    if (tail_local_ != tail_.load(std::memory_order_relaxed))
      tail_.store(tail_local_, std::memory_order_release);
  }

 private:
  struct Slot {
    size_t len;
    uint8_t data[kSlotSize];
  };
  alignas(64) std::atomic<size_t> head_{0};
  alignas(64) size_t head_local_ = 0, tail_cache_ = 0;  // the producer's
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) size_t tail_local_ = 0, head_cache_ = 0;  // the consumer's
  Slot slots_[kSlots];
};

// Runs one endpoint on its thread: feeds it what arrives on `in`, sends what it produces to `out`.
struct EndpointThread {
  Endpoint* ep;
  PathAddress peer;
  DatagramRing* in;
  DatagramRing* out;

  // One service round; returns the number of datagrams handled in either direction.
  size_t round(Instant t) {
    size_t work = 0;
    size_t len;
    while (uint8_t* d = in->consumer_slot(len)) {
      ep->handle_datagram(t, peer, d, len);
      in->consumed();
      if (++work >= 64) break;
    }
    in->release();
    if (ep->next_timeout() <= t) ep->handle_timeout(t);
    PathAddress dest;
    for (int i = 0; i < 64; ++i) {
      uint8_t* slot = out->producer_slot();
      if (!slot) break;
      size_t n = ep->poll_transmit(t, slot, DatagramRing::kSlotSize, dest);
      if (n == 0) break;
      out->push(n);
      ++work;
    }
    out->publish();
    return work;
  }
};

}  // namespace

namespace {

// How the sending thread hands its messages over.
enum class SendMode {
  kReused,       // the same buffer every time, copied in: the core's own cost
  kFilledCopy,   // the application writes each message into its buffer, which send() copies
  kFilledOwned,  // the application writes each message into a new vector and hands it over
};

struct CoreThroughput {
  double mb_per_s = 0, seconds = 0;
  uint64_t messages = 0;
  std::optional<protocol::ConnectionStats> stats;
};

CoreThroughput measure_core_throughput(const CoreOptions& o, bool aes_gcm, SendMode mode) {
  protocol::EndpointConfig cfg;
  cfg.connection.max_packet_size = 1200;  // the scenario's packet size: no path MTU probing
  cfg.prefer_aes_gcm = aes_gcm;
  if (std::getenv("PEERLINK_BENCH_NO_PACING")) cfg.connection.pacing = false;
  if (const char* t = std::getenv("PEERLINK_BENCH_ACK_THRESHOLD"))
    cfg.connection.max_ack_threshold_request = uint32_t(std::atoi(t));
  crypto::SystemRandom rng_a, rng_b;
  Identity ida = Identity::generate(), idb = Identity::generate();
  Endpoint a(cfg, ida, rng_a), b(cfg, idb, rng_b);
  PathAddress aa = PathAddress::from_u64(1), ba = PathAddress::from_u64(2);
  auto a_to_b = std::make_unique<DatagramRing>();
  auto b_to_a = std::make_unique<DatagramRing>();
  EndpointThread sender{&a, ba, b_to_a.get(), a_to_b.get()};
  EndpointThread receiver{&b, aa, a_to_b.get(), b_to_a.get()};

  // Handshake on this thread, then one thread per endpoint as two peers on two cores would run.
  protocol::ConnectionId c = a.connect(now(), ba, idb.public_key());
  protocol::ConnectionId s = 0;
  for (int i = 0; i < 1000000; ++i) {
    Instant t = now();
    sender.round(t);
    receiver.round(t);
    protocol::Event e;
    while (b.poll_event(e)) {
      if (e.kind == protocol::EventKind::kIncomingRequest) {
        s = e.connection;
        b.accept(s, t);
      }
    }
    const auto* conn = a.connection(c);
    if (s != 0 && conn && conn->state() == protocol::ConnectionState::kConnected) break;
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> received{0}, messages{0};
  std::vector<uint8_t> msg(o.message_size, 0x5a);
  Instant start = now();
  std::thread rx([&] {
    protocol::ReceivedMessage m;
    uint64_t bytes = 0, count = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      Instant t = now();
      receiver.round(t);
      while (b.receive(s, m)) {
        bytes += m.data.size();
        ++count;
      }
      received.store(bytes, std::memory_order_relaxed);
      messages.store(count, std::memory_order_relaxed);
    }
  });
  Instant end =
      start + std::chrono::duration_cast<protocol::Duration>(std::chrono::duration<double>(o.seconds));
  Instant t = start;
  uint64_t at_end = 0;
  uint8_t fill = 0;
  while (t < end) {
    t = now();
    for (;;) {
      auto st = a.stats(c, t);
      if (!st || st->queued_bytes > (8u << 20)) break;
      protocol::SendResult r;
      if (mode == SendMode::kFilledOwned) {
        std::vector<uint8_t> m(o.message_size);
        std::memset(m.data(), int(++fill), m.size());
        r = a.send(c, std::move(m), protocol::send_flags::kReliable, 0, t);
      } else {
        if (mode == SendMode::kFilledCopy) std::memset(msg.data(), int(++fill), msg.size());
        r = a.send(c, msg.data(), msg.size(), protocol::send_flags::kReliable, 0, t);
      }
      if (r != protocol::SendResult::kOk) break;
    }
    for (int k = 0; k < 16; ++k)
      sender.round(now());
  }
  at_end = received.load();
  double secs = std::chrono::duration<double>(now() - start).count();
  stop = true;
  rx.join();
  CoreThroughput r;
  r.mb_per_s = double(at_end) / secs / 1e6;
  r.seconds = secs;
  r.messages = messages.load();
  r.stats = a.stats(c, t);
  return r;
}

// The cipher alone: one thread sealing 1200-byte packets in place with the connection's cipher, MB/s of
// plaintext. The sending endpoint of core-throughput does this and all the protocol's work besides, on one
// core, so its goodput stays below this.
double measure_seal_rate(crypto::AeadAlgorithm alg, double seconds) {
  crypto::SystemRandom rng;
  crypto::Key32 key;
  rng.fill(key.data(), key.size());
  crypto::Aead aead(alg, key);
  constexpr size_t kPacket = 1200, kHeader = 16;
  std::vector<uint8_t> packet(kPacket + crypto::kAeadTagLength, 0x5a);
  uint64_t nonce = 0;
  const Instant start = now();
  const Instant end =
      start + std::chrono::duration_cast<protocol::Duration>(std::chrono::duration<double>(seconds));
  Instant t = start;
  while (t < end) {
    for (int i = 0; i < 256; ++i, ++nonce)
      aead.seal(nonce, packet.data(), kHeader, packet.data() + kHeader, kPacket - kHeader,
                packet.data() + kHeader);
    t = now();
  }
  return double(nonce) * double(kPacket - kHeader) / std::chrono::duration<double>(t - start).count() / 1e6;
}

}  // namespace

void run_core_throughput(const CoreOptions& o, bool aes_gcm) {
  const CoreThroughput r = measure_core_throughput(o, aes_gcm, SendMode::kReused);
  const auto& st = r.stats;
  // The cipher the connection used: AES-GCM when asked for and the CPU has AES instructions
  // (Endpoint::connect).
  const crypto::AeadAlgorithm alg =
      aes_gcm && crypto::cpu_has_aes() ? crypto::AeadAlgorithm::kAesGcm : crypto::AeadAlgorithm::kChaChaPoly;
  const double seal = measure_seal_rate(alg, std::min(1.0, o.seconds));
  Figure f{aes_gcm ? "core-throughput" : "core-throughput-chacha", r.mb_per_s, "MB/s", {}};
  f.compare("the cipher alone: one core sealing 1200-byte packets, same run", seal)
      .add("cipher", alg == crypto::AeadAlgorithm::kAesGcm ? "aes-256-gcm" : "chacha20-poly1305")
      .add("packet_size", 1200.0)
      .add("message_size", double(o.message_size))
      .add("threads", 2.0)
      .add("seconds", r.seconds)
      .add("messages", double(r.messages))
      .add("packets_sent", double(st ? st->packets_sent : 0))
      .add("packets_lost", double(st ? st->packets_lost : 0))
      .add("ack_packets", double(st ? st->packets_received : 0))
      .add("target", 2000.0);
  f.print();
}

void run_core_throughput_owned(const CoreOptions& o) {
  // Alternating runs: this VM's speed drifts more within a minute than the difference measured.
  std::vector<double> copied, owned;
  for (int i = 0; i < 3; ++i) {
    copied.push_back(measure_core_throughput(o, true, SendMode::kFilledCopy).mb_per_s);
    owned.push_back(measure_core_throughput(o, true, SendMode::kFilledOwned).mb_per_s);
  }
  std::sort(copied.begin(), copied.end());
  std::sort(owned.begin(), owned.end());
  Figure f{"core-throughput-owned", owned[1], "MB/s", {}};
  f.add("metric", "median of 3")
      .add("baseline", "the same messages written into one buffer and copied in by send()")
      .add("baseline_value", copied[1])
      .add("ratio", owned[1] / copied[1])
      .add("message_size", double(o.message_size))
      .add("owned_runs", runs_text(owned, 6))
      .add("copied_runs", runs_text(copied, 6));
  f.print();
}

CoreMemoryResult measure_core_memory(size_t connections) {
  protocol::EndpointConfig cfg;
  crypto::SystemRandom rng;
  Identity ida = Identity::generate(), idb = Identity::generate();
  PathAddress ba = PathAddress::from_u64(2);
  std::vector<uint8_t> buf(2048);
  size_t heap0 = heap_in_use();
  size_t rss0 = rss_bytes();
  auto server = std::make_unique<Endpoint>(cfg, idb, rng);
  size_t connected = 0;
  {
    auto client = std::make_unique<Endpoint>(cfg, ida, rng);
    // Each client connection gets its own address, as distinct peers would have.
    std::vector<protocol::ConnectionId> ids;
    for (size_t i = 0; i < connections; ++i) {
      ids.push_back(client->connect(now(), ba, idb.public_key()));
    }
    // Retries and handshake retransmissions pace themselves: keep servicing until all are up (or 60 s).
    Instant deadline = now() + std::chrono::seconds(60);
    for (int round = 0; now() < deadline; ++round) {
      Instant t = now();
      if (client->next_timeout() <= t) client->handle_timeout(t);
      if (server->next_timeout() <= t) server->handle_timeout(t);
      PathAddress dest;
      // One datagram at a time, answers included, as an event loop would handle them.
      std::vector<uint8_t> reply(2048);
      while (size_t len = client->poll_transmit(t, buf.data(), buf.size(), dest)) {
        server->handle_datagram(t, PathAddress::from_u64(1), buf.data(), len);
        accept_all(*server, t);
        while (size_t n = server->poll_transmit(t, reply.data(), reply.size(), dest)) {
          client->handle_datagram(t, ba, reply.data(), n);
        }
      }
      connected = 0;
      for (auto id : ids) {
        const auto* conn = client->connection(id);
        if (conn && conn->state() == protocol::ConnectionState::kConnected) ++connected;
      }
      protocol::Event e;
      while (client->poll_event(e)) {
      }
      if (connected == ids.size() && server->connection_count() == ids.size()) break;
    }
    // Let the handshake confirmations and first acks settle so every connection is idle.
    for (int round = 0; round < 20; ++round)
      service(*client, PathAddress::from_u64(1), *server, ba, now(), buf.data(), buf.size());
  }
  size_t heap1 = heap_in_use();
  size_t rss1 = rss_bytes();
  CoreMemoryResult r;
  r.connections = server->connection_count();
  r.connected_initiators = connected;
  if (r.connections > 0) {
    r.heap_per_connection = double(heap1 - heap0) / double(r.connections);
    r.rss_per_connection = double(rss1 > rss0 ? rss1 - rss0 : 0) / double(r.connections);
  }
  return r;
}

void run_core_memory(const CoreOptions& o) {
  CoreMemoryResult r = measure_core_memory(o.connections);
  Figure f{"core-memory", r.heap_per_connection, "bytes/connection", {}};
  f.add("connections", double(r.connections))
      .add("connected_initiators", double(r.connected_initiators))
      .add("rss_bytes_per_connection", r.rss_per_connection)
      .add("target", 16384.0);
  f.print();
}

void run_core_handshake(const CoreOptions& o) {
  // Both sides in this thread, datagrams handed over directly: what is left is CPU, mostly the X25519
  // operations (ephemeral key, es and ss at the initiator; es, ss, ephemeral key, ee and se at the
  // responder; ee and se back at the initiator). Measured twice: cold, and with each side's ephemeral key
  // made ahead, as a Host makes it while idle.
  protocol::EndpointConfig cfg;  // the default address validation: no cookie asked for (not under load)
  crypto::SystemRandom rng;
  Identity ida = Identity::generate(), idb = Identity::generate();
  PathAddress aa = PathAddress::from_u64(1), ba = PathAddress::from_u64(2);
  std::vector<uint8_t> buf(2048);
  const uint8_t hello[32] = {};
  double cold_p50 = 0;
  for (bool prepared : {false, true}) {
    std::vector<double> samples;
    Instant end =
        now() + std::chrono::duration_cast<protocol::Duration>(std::chrono::duration<double>(o.seconds));
    while (now() < end && samples.size() < 5000) {
      Endpoint client(cfg, ida, rng), server(cfg, idb, rng);
      if (prepared) {
        client.give_ephemeral(crypto::x25519_generate(rng));
        server.give_ephemeral(crypto::x25519_generate(rng));
      }
      Instant t0 = now();
      protocol::ConnectionId c = client.connect(t0, ba, idb.public_key());
      client.send(c, hello, sizeof hello, send_flags::kReliable | send_flags::kNoNagle, 0, t0);
      protocol::ReceivedMessage m;
      bool delivered = false;
      for (int round = 0; round < 16 && !delivered; ++round) {
        Instant t = now();
        pump(client, aa, server, t, buf.data(), buf.size());
        accept_all(server, t);
        pump(server, ba, client, t, buf.data(), buf.size());
        delivered = server.receive_any(m);
      }
      if (!delivered) {
        std::fprintf(stderr, "peerlink-bench: core-handshake: the first message was not delivered\n");
        std::exit(1);
      }
      samples.push_back(std::chrono::duration<double, std::micro>(now() - t0).count());
      if (prepared && (!client.wants_ephemeral() || !server.wants_ephemeral())) {
        std::fprintf(stderr, "peerlink-bench: core-handshake: a key made ahead was not used\n");
        std::exit(1);
      }
    }
    std::sort(samples.begin(), samples.end());
    Figure f{"core-handshake", samples[samples.size() / 2], "us", {}};
    if (prepared) {
      f.compare("ephemeral keys made in the handshake, same run", cold_p50);
    } else {
      cold_p50 = samples[samples.size() / 2];
    }
    f.add("metric", "p50")
        .add("p99_us", samples[samples.size() * 99 / 100])
        .add("handshakes", double(samples.size()))
        .add("ephemeral_keys", prepared ? "made ahead (Endpoint::give_ephemeral)" : "made in the handshake")
        .add("pattern", "Noise IK, no address-validation cookie (not under load), both sides on one thread");
    f.print();
  }
}

}  // namespace peerlink::bench
