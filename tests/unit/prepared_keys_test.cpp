// Handshake work done ahead, at the Endpoint: the spare ephemeral key pair is taken by the next handshake on
// either side but not by a forged Initiation, and the initiator's remembered static-static DH belongs to the
// peer key it was computed for. (The Noise side of it is tested in noise_vectors_test.cpp.)
#include <gtest/gtest.h>

#include <vector>

#include "peerlink/identity.hpp"
#include "transport/crypto/random.hpp"
#include "transport/crypto/x25519.hpp"
#include "transport/protocol/endpoint.hpp"
#include "transport/protocol/packet.hpp"

namespace peerlink {
namespace {

using namespace crypto;
using Bytes = std::vector<uint8_t>;

// An initiator and two responders handing datagrams to each other directly.
struct Endpoints {
  SeededRandom rng_a{1}, rng_b{2}, rng_c{3};
  Identity ida = Identity::generate(), idb = Identity::generate(), idc = Identity::generate();
  protocol::EndpointConfig cfg;
  protocol::Endpoint a{cfg, ida, rng_a}, b{cfg, idb, rng_b}, c{cfg, idc, rng_c};
  protocol::PathAddress aa = protocol::PathAddress::from_u64(1), ba = protocol::PathAddress::from_u64(2),
                        ca = protocol::PathAddress::from_u64(3);
  protocol::Instant now{};
  uint8_t buf[2048];

  // Runs until connection id of a is connected or ends; returns its last state, and its end reason.
  protocol::ConnectionState run(protocol::ConnectionId id, uint32_t* reason = nullptr) {
    protocol::ConnectionState state = protocol::ConnectionState::kConnecting;
    for (int step = 0; step < 200; ++step) {
      now += std::chrono::milliseconds(1);
      for (protocol::Endpoint* e : {&a, &b, &c})
        if (e->next_timeout() <= now) e->handle_timeout(now);
      protocol::PathAddress to;
      while (size_t n = a.poll_transmit(now, buf, sizeof buf, to))
        (to == ba ? b : c).handle_datagram(now, aa, buf, n);
      for (auto [responder, from] : {std::pair{&b, ba}, std::pair{&c, ca}}) {
        while (size_t n = responder->poll_transmit(now, buf, sizeof buf, to))
          a.handle_datagram(now, from, buf, n);
        protocol::Event e;
        while (responder->poll_event(e))
          if (e.kind == protocol::EventKind::kIncomingRequest) responder->accept(e.connection, now);
      }
      protocol::Event e;
      while (a.poll_event(e)) {
        if (e.connection != id || e.kind != protocol::EventKind::kStateChanged) continue;
        state = e.state;
        if (reason) *reason = e.reason;
      }
      if (state != protocol::ConnectionState::kConnecting) return state;
    }
    return state;
  }
};

TEST(PreparedKeys, Endpoints_SparesUsedOnBothSides_AndReconnectsWithTheCachedStaticDh) {
  Endpoints w;
  EXPECT_FALSE(w.a.wants_ephemeral()) << "no spare is made before the first handshake";
  SeededRandom rng{4};
  for (int round = 0; round < 3; ++round) {  // the second and third use the remembered DH
    w.a.give_ephemeral(x25519_generate(rng));
    w.b.give_ephemeral(x25519_generate(rng));
    EXPECT_FALSE(w.a.wants_ephemeral());
    const protocol::ConnectionId c = w.a.connect(w.now, w.ba, w.idb.public_key());
    EXPECT_TRUE(w.a.wants_ephemeral()) << "the initiator took its spare";
    ASSERT_EQ(w.run(c), protocol::ConnectionState::kConnected) << "round " << round;
    EXPECT_TRUE(w.b.wants_ephemeral()) << "the responder took its spare";
    const protocol::Connection* conn = w.a.connection(c);
    ASSERT_NE(conn, nullptr);
    EXPECT_EQ(conn->remote_key(), w.idb.public_key());
  }
}

TEST(PreparedKeys, Endpoints_RememberedDhBelongsToItsPeerKey_AWrongKeyStillFailsWithKeyMismatch) {
  // Alternating between two peers, each reconnect takes the remembered DH of its own peer's key: one
  // remembered under the wrong key would make that peer unable to read the Initiation.
  Endpoints w;
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(w.run(w.a.connect(w.now, w.ba, w.idb.public_key())), protocol::ConnectionState::kConnected)
        << "round " << round;
    ASSERT_EQ(w.run(w.a.connect(w.now, w.ca, w.idc.public_key())), protocol::ConnectionState::kConnected)
        << "round " << round;
  }
  // b's address, c's (remembered) key: b cannot read it.
  uint32_t reason = 0;
  const protocol::ConnectionState s = w.run(w.a.connect(w.now, w.ba, w.idc.public_key()), &reason);
  EXPECT_NE(s, protocol::ConnectionState::kConnected);
  EXPECT_EQ(reason, uint32_t(EndReason::kRemoteKeyMismatch));
}

TEST(PreparedKeys, Endpoints_ForgedInitiation_DoesNotUseUpTheResponderSpare) {
  Endpoints w;
  w.cfg.retry = protocol::RetryPolicy::kNever;
  protocol::Endpoint b(w.cfg, w.idb, w.rng_b);  // answers the first Initiation: no cookie round trip
  SeededRandom rng{6};
  b.give_ephemeral(x25519_generate(rng));
  w.a.connect(w.now, w.ba, w.idb.public_key());
  protocol::PathAddress to;
  const size_t n = w.a.poll_transmit(w.now, w.buf, sizeof w.buf, to);
  ASSERT_GT(n, 64u);
  Bytes initiation(w.buf, w.buf + n);
  protocol::InitiationPacket parsed;
  ASSERT_TRUE(protocol::decode_initiation(initiation.data(), initiation.size(), parsed));
  const size_t noise = size_t(parsed.noise - initiation.data()), end = noise + parsed.noise_length;
  for (size_t pos : {noise, noise + 40, end - 20, end - 1}) {  // ephemeral key, static key, payload tag
    Bytes forged = initiation;
    forged[pos] ^= 0x40;
    b.handle_datagram(w.now, w.aa, forged.data(), forged.size());
    EXPECT_FALSE(b.wants_ephemeral()) << "byte " << pos;
  }
  Bytes genuine = initiation;  // handle_datagram may decrypt in place
  b.handle_datagram(w.now, w.aa, genuine.data(), genuine.size());
  EXPECT_TRUE(b.wants_ephemeral()) << "the genuine Initiation took it";
}

}  // namespace
}  // namespace peerlink
