// Throws arbitrary datagrams at an Endpoint that has a live connection, between real packets of an ongoing
// exchange: garbage, forged handshake packets, forged data packets for the live connection id. Whatever the
// input, nothing may crash or hang, and the live connection must keep delivering its messages intact.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "peerlink/identity.hpp"
#include "transport/crypto/random.hpp"
#include "transport/protocol/endpoint.hpp"
#include "transport/protocol/packet.hpp"

namespace {

using namespace peerlink;
using namespace peerlink::protocol;

struct World {
  crypto::SeededRandom rng_a{1}, rng_b{2};
  Identity ida = Identity::from_private_key({1, 2, 3});
  Identity idb = Identity::from_private_key({4, 5, 6});
  EndpointConfig cfg;
  Endpoint a, b;
  PathAddress aa = PathAddress::from_u64(1), ba = PathAddress::from_u64(2);
  ConnectionId ca = 0, cb = 0;
  Instant now{};
  uint8_t buf[2048];

  World() : a(cfg, ida, rng_a), b(cfg, idb, rng_b) {
    ca = a.connect(now, ba, idb.public_key());
    for (int i = 0; i < 50 && !connected(); ++i)
      step();
    FUZZ_CHECK(connected());
  }
  bool connected() {
    const Connection* c = a.connection(ca);
    const Connection* s = cb ? b.connection(cb) : nullptr;
    return c && s && c->state() == ConnectionState::kConnected && s->state() == ConnectionState::kConnected;
  }
  void step() {
    now += std::chrono::milliseconds(1);
    if (a.next_timeout() <= now) a.handle_timeout(now);
    if (b.next_timeout() <= now) b.handle_timeout(now);
    PathAddress to;
    while (size_t n = a.poll_transmit(now, buf, sizeof buf, to))
      b.handle_datagram(now, aa, buf, n);
    while (size_t n = b.poll_transmit(now, buf, sizeof buf, to))
      a.handle_datagram(now, ba, buf, n);
    Event e;
    while (b.poll_event(e)) {
      if (e.kind == EventKind::kIncomingRequest) {
        cb = e.connection;
        b.accept(cb, now);
      }
    }
    while (a.poll_event(e)) {
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World w;
  uint64_t sent = 0, received = 0;
  // The input is a sequence of records: 1 byte of flags, 2 bytes of length, the datagram. Flag bit 0 sends
  // it to the server (else to the client); bit 1 rewrites its receiver id to the live connection's so it
  // reaches the connection itself rather than the endpoint's demultiplexer.
  size_t pos = 0;
  int rounds = 0;
  while (pos + 3 <= size && rounds++ < 64) {
    uint8_t flags = data[pos];
    size_t len = size_t(data[pos + 1]) << 8 | data[pos + 2];
    pos += 3;
    len = std::min(len, size - pos);
    std::vector<uint8_t> dg(data + pos, data + pos + len);
    pos += len;
    bool to_server = flags & 1;
    if ((flags & 2) && dg.size() >= kDataHeaderSize) {
      const Connection* target = to_server ? w.b.connection(w.cb) : w.a.connection(w.ca);
      if (target) {
        uint32_t id = target->id();
        dg[0] = uint8_t(0x40 | (dg[0] & 1));
        for (int i = 0; i < 4; ++i)
          dg[1 + i] = uint8_t(id >> (24 - 8 * i));
      }
    }
    if (to_server) {
      w.b.handle_datagram(w.now, w.aa, dg.data(), dg.size());
    } else {
      w.a.handle_datagram(w.now, w.ba, dg.data(), dg.size());
    }
    // Real traffic keeps flowing: one message per round, checked on arrival.
    uint8_t msg[64];
    std::memset(msg, int(sent & 0xff), sizeof msg);
    if (w.a.send(w.ca, msg, sizeof msg, send_flags::kReliable | send_flags::kNoNagle, 0, w.now) ==
        SendResult::kOk) {
      ++sent;
    }
    w.step();
    ReceivedMessage m;
    while (w.b.receive(w.cb, m)) {
      FUZZ_CHECK(m.data.size() == 64);
      FUZZ_CHECK(m.data[0] == uint8_t(received & 0xff));
      ++received;
    }
  }
  for (int i = 0; i < 20 && received < sent; ++i) {
    w.step();
    ReceivedMessage m;
    while (w.b.receive(w.cb, m)) {
      FUZZ_CHECK(m.data[0] == uint8_t(received & 0xff));
      ++received;
    }
  }
  // Forged input cannot authenticate, so the live connection must be untouched.
  FUZZ_CHECK(w.connected());
  FUZZ_CHECK(received == sent);
  return 0;
}
