// Work done ahead of a handshake: an ephemeral key pair made before the handshake and the initiator's
// static-static DH remembered per peer key. What the handshake sends and agrees on must be exactly what it
// would have been had it computed them itself, a wrong precomputed value must fail the handshake, and
// hostile input must not use up the spare key.
#include <gtest/gtest.h>

#include <vector>

#include "peerlink/identity.hpp"
#include "transport/crypto/noise.hpp"
#include "transport/crypto/random.hpp"
#include "transport/crypto/x25519.hpp"
#include "transport/protocol/endpoint.hpp"
#include "transport/protocol/packet.hpp"

namespace peerlink {
namespace {

using namespace crypto;
using Bytes = std::vector<uint8_t>;

struct IkPair {
  SeededRandom rng{11};
  X25519KeyPair init_static = x25519_generate(rng), resp_static = x25519_generate(rng);
  HandshakeConfig init_cfg, resp_cfg;
  IkPair() {
    init_cfg.pattern = resp_cfg.pattern = NoisePattern::kIK;
    init_cfg.initiator = true;
    resp_cfg.initiator = false;
    init_cfg.local_static = init_static;
    resp_cfg.local_static = resp_static;
    init_cfg.remote_static = resp_static.public_key;
  }
  Key32 static_static() const {
    Key32 ss{};
    EXPECT_TRUE(x25519(init_static.private_key, resp_static.public_key, ss));
    return ss;
  }
};

// Runs IK to completion; returns the handshake hash both sides agree on (empty if they do not).
Bytes run_ik(HandshakeState& i, HandshakeState& r, Bytes* first = nullptr, Bytes* second = nullptr) {
  Bytes m1, m2, pl;
  if (i.write_message(nullptr, 0, m1) != HandshakeError::kNone) return {};
  if (r.read_message(m1.data(), m1.size(), pl) != HandshakeError::kNone) return {};
  if (r.write_message(nullptr, 0, m2) != HandshakeError::kNone) return {};
  if (i.read_message(m2.data(), m2.size(), pl) != HandshakeError::kNone) return {};
  if (first) *first = m1;
  if (second) *second = m2;
  const auto hi = i.handshake_hash(), hr = r.handshake_hash();
  if (!i.complete() || !r.complete() || hi != hr) return {};
  return Bytes(hi.begin(), hi.end());
}

TEST(PreparedKeys, IK_StaticStaticGiven_SameMessagesAndKeysAsComputed) {
  IkPair p;
  SeededRandom rng{5};
  const X25519KeyPair e = x25519_generate(rng);
  HandshakeConfig computed = p.init_cfg, given = p.init_cfg;
  computed.local_ephemeral = e;
  given.local_ephemeral = e;
  given.static_static = p.static_static();
  const X25519KeyPair re = x25519_generate(rng);
  HandshakeConfig resp = p.resp_cfg;
  resp.local_ephemeral = re;
  HandshakeState i1(computed, p.rng), r1(resp, p.rng), i2(given, p.rng), r2(resp, p.rng);
  Bytes a1, a2, b1, b2;
  const Bytes h1 = run_ik(i1, r1, &a1, &a2), h2 = run_ik(i2, r2, &b1, &b2);
  ASSERT_FALSE(h1.empty());
  EXPECT_EQ(h1, h2);
  EXPECT_EQ(a1, b1);  // byte for byte: nonces and keys are deterministic given the ephemerals
  EXPECT_EQ(a2, b2);
  EXPECT_EQ(i1.split().initiator_to_responder, i2.split().initiator_to_responder);
  // The prepared ephemeral key is the one the first message carries.
  EXPECT_TRUE(std::equal(e.public_key.begin(), e.public_key.end(), b1.begin()));
  EXPECT_TRUE(std::equal(re.public_key.begin(), re.public_key.end(), b2.begin()));
}

TEST(PreparedKeys, IK_WrongStaticStatic_ResponderCannotReadTheFirstMessage) {
  IkPair p;
  HandshakeConfig bad = p.init_cfg;
  bad.static_static = p.static_static();
  (*bad.static_static)[0] ^= 1;
  HandshakeState i(bad, p.rng), r(p.resp_cfg, p.rng);
  Bytes m, pl;
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  EXPECT_EQ(r.read_message(m.data(), m.size(), pl), HandshakeError::kDecryptFailed);
}

TEST(PreparedKeys, XX_StaticStaticWithoutAPreMessageKey_IsIgnored) {
  // In XX the peer's static key arrives in the handshake, so a precomputed value could belong to some
  // other key: it must not be used, and the handshake completes as if it were absent.
  SeededRandom rng{9};
  HandshakeConfig i_cfg, r_cfg;
  i_cfg.pattern = r_cfg.pattern = NoisePattern::kXX;
  i_cfg.initiator = true;
  r_cfg.initiator = false;
  i_cfg.local_static = x25519_generate(rng);
  r_cfg.local_static = x25519_generate(rng);
  i_cfg.static_static = Key32{};
  r_cfg.static_static = Key32{};
  HandshakeState i(i_cfg, rng), r(r_cfg, rng);
  Bytes m, pl;
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  ASSERT_EQ(r.read_message(m.data(), m.size(), pl), HandshakeError::kNone);
  ASSERT_EQ(r.write_message(nullptr, 0, m), HandshakeError::kNone);
  ASSERT_EQ(i.read_message(m.data(), m.size(), pl), HandshakeError::kNone);
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  ASSERT_EQ(r.read_message(m.data(), m.size(), pl), HandshakeError::kNone);
  EXPECT_TRUE(i.complete() && r.complete());
  EXPECT_EQ(i.handshake_hash(), r.handshake_hash());
}

TEST(PreparedKeys, EphemeralIsUsedOnce_TheNextHandshakeMakesAFreshOne) {
  IkPair p;
  SeededRandom rng{3};
  const X25519KeyPair e = x25519_generate(rng);
  HandshakeState i(p.init_cfg, p.rng);
  i.use_ephemeral(e);
  Bytes m;
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  EXPECT_TRUE(std::equal(e.public_key.begin(), e.public_key.end(), m.begin()));
  HandshakeState fresh(p.init_cfg, p.rng);
  Bytes m2;
  ASSERT_EQ(fresh.write_message(nullptr, 0, m2), HandshakeError::kNone);
  EXPECT_FALSE(std::equal(e.public_key.begin(), e.public_key.end(), m2.begin()));
}

// Two endpoints handing datagrams to each other directly.
struct Endpoints {
  SeededRandom rng_a{1}, rng_b{2};
  Identity ida = Identity::generate(), idb = Identity::generate();
  protocol::EndpointConfig cfg;
  protocol::Endpoint a{cfg, ida, rng_a}, b{cfg, idb, rng_b};
  protocol::PathAddress aa = protocol::PathAddress::from_u64(1), ba = protocol::PathAddress::from_u64(2);
  protocol::Instant now{};
  uint8_t buf[2048];

  // Runs until connection c of a is connected or ends; returns its last state, and its end reason.
  protocol::ConnectionState run(protocol::ConnectionId c, uint32_t* reason = nullptr) {
    protocol::ConnectionState state = protocol::ConnectionState::kConnecting;
    for (int step = 0; step < 200; ++step) {
      now += std::chrono::milliseconds(1);
      if (a.next_timeout() <= now) a.handle_timeout(now);
      if (b.next_timeout() <= now) b.handle_timeout(now);
      protocol::PathAddress to;
      while (size_t n = a.poll_transmit(now, buf, sizeof buf, to))
        b.handle_datagram(now, aa, buf, n);
      while (size_t n = b.poll_transmit(now, buf, sizeof buf, to))
        a.handle_datagram(now, ba, buf, n);
      protocol::Event e;
      while (b.poll_event(e))
        if (e.kind == protocol::EventKind::kIncomingRequest) b.accept(e.connection, now);
      while (a.poll_event(e)) {
        if (e.connection != c || e.kind != protocol::EventKind::kStateChanged) continue;
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

TEST(PreparedKeys, Endpoints_WrongExpectedKeyAfterACachedOne_StillFailsWithKeyMismatch) {
  Endpoints w;
  ASSERT_EQ(w.run(w.a.connect(w.now, w.ba, w.idb.public_key())), protocol::ConnectionState::kConnected);
  const Identity other = Identity::generate();
  uint32_t reason = 0;
  const protocol::ConnectionState s = w.run(w.a.connect(w.now, w.ba, other.public_key()), &reason);
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
