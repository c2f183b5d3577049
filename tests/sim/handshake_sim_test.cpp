// Handshakes over the simulator: IK and XX, retry cookies, wrong keys, rejection, timeouts.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

TEST(Handshake, IK_ConnectsBothSidesAndLearnsKeys) {
  SimPair p(test_seed(1), PairOptions{});
  ASSERT_TRUE(p.connect()) << p.where();
  const auto* c = p.net.endpoint(p.client).connection(p.cc);
  const auto* s = p.net.endpoint(p.server).connection(p.sc);
  ASSERT_TRUE(c && s);
  EXPECT_EQ(*c->remote_key(), p.server_id.public_key());
  EXPECT_EQ(*s->remote_key(), p.client_id.public_key());
  // One Retry round trip plus the handshake: a few RTTs of 20 ms at most.
  EXPECT_LE(p.net.now().time_since_epoch(), milliseconds(100)) << p.where();
  EXPECT_EQ(p.net.endpoint(p.server).counters().retries_sent, 1u);
}

TEST(Handshake, XX_ConnectsWithoutKnowingThePeerKey) {
  PairOptions o;
  o.ik = false;
  SimPair p(test_seed(2), o);
  ASSERT_TRUE(p.connect()) << p.where();
  EXPECT_EQ(*p.net.endpoint(p.client).connection(p.cc)->remote_key(), p.server_id.public_key());
  EXPECT_EQ(*p.net.endpoint(p.server).connection(p.sc)->remote_key(), p.client_id.public_key());
}

TEST(Handshake, IK_WrongServerKey_FailsWithKeyMismatch) {
  SimPair p(test_seed(3), PairOptions{});
  Identity other = Identity::generate();
  p.cc = p.net.endpoint(p.client).connect(p.net.now(), p.net.address(p.server), other.public_key());
  p.net.run_for(
      seconds(5), [&] { return p.client_state == ConnectionState::kClosed; }, [&] { p.pump_events(); });
  EXPECT_EQ(p.client_state, ConnectionState::kClosed) << p.where();
  EXPECT_EQ(p.client_reason, uint32_t(EndReason::kRemoteKeyMismatch)) << p.client_debug;
  EXPECT_EQ(p.net.endpoint(p.server).connection_count(), 0u);
  // Quick: the Reject arrives in about one round trip after the Retry, not after a timeout.
  EXPECT_LE(p.net.now().time_since_epoch(), milliseconds(200)) << p.where();
}

TEST(Handshake, ServerRejects_ClientSeesTheApplicationReason) {
  SimPair p(test_seed(4), PairOptions{});
  p.accept_incoming = false;
  p.reject_reason = 1234;
  p.start();
  p.net.run_for(
      seconds(5), [&] { return p.client_state == ConnectionState::kClosed; }, [&] { p.pump_events(); });
  EXPECT_EQ(p.client_state, ConnectionState::kClosed);
  EXPECT_EQ(p.client_reason, 1234u);
}

TEST(Handshake, NoServer_ConnectTimesOutWithClearReason) {
  PairOptions o;
  o.client.connection.connect_timeout = seconds(3);
  o.client_to_server.loss = 1.0;
  SimPair p(test_seed(5), o);
  p.start();
  p.net.run_for(
      seconds(10), [&] { return p.client_state == ConnectionState::kClosed; }, [&] { p.pump_events(); });
  EXPECT_EQ(p.client_state, ConnectionState::kClosed);
  EXPECT_EQ(p.client_reason, uint32_t(EndReason::kMiscConnectTimeout));
  EXPECT_LE(p.net.now().time_since_epoch(), seconds(4));
}

TEST(Handshake, HandshakeLossAndDuplication_StillConnects) {
  for (uint64_t seed = 100; seed < 100 + uint64_t(soak_seeds(20)); ++seed) {
    PairOptions o;
    o.client_to_server.loss = o.server_to_client.loss = 0.3;
    o.client_to_server.duplicate = o.server_to_client.duplicate = 0.3;
    o.client_to_server.jitter = o.server_to_client.jitter = milliseconds(15);
    o.ik = seed % 2 == 0;
    // Each round trip survives with p = 0.49: allow enough retransmissions that bad luck cannot fail it.
    o.client.connection.connect_timeout = o.server.connection.connect_timeout = seconds(60);
    SimPair p(test_seed(seed), o);
    ASSERT_TRUE(p.connect(seconds(60))) << p.where();
    EXPECT_EQ(p.net.endpoint(p.server).connection_count(), 1u) << p.where();
  }
}

TEST(Handshake, SpoofedInitiations_AllocateNoStateAndAreNotAmplified) {
  SimPair p(test_seed(6), PairOptions{});
  // Forge Initiations from an address that never answers (node 7 does not exist): only Retries go back,
  // each smaller than the Initiation that caused it.
  for (int i = 0; i < 50; ++i) {
    std::vector<uint8_t> init(protocol::kMinInitiationSize);
    protocol::InitiationPacket ip;
    ip.sender_id = uint32_t(1000 + i);
    std::vector<uint8_t> noise(96, uint8_t(i));
    ip.noise = noise.data();
    ip.noise_length = noise.size();
    init.resize(protocol::encode_initiation(ip, init.data(), init.size()));
    p.net.inject(p.client, p.server, std::move(init));
  }
  p.net.run_for(milliseconds(100));
  EXPECT_EQ(p.net.endpoint(p.server).connection_count(), 0u);
  EXPECT_EQ(p.net.endpoint(p.server).counters().retries_sent, 50u);
  const LinkStats& back = p.net.link_stats(p.server, p.client);
  EXPECT_LE(back.bytes_delivered, 50u * protocol::kMinInitiationSize / 3);
}

TEST(Handshake, WithoutRetry_ServerSendsAtMostThreeTimesWhatItReceived) {
  PairOptions o;
  o.server.retry = protocol::RetryPolicy::kNever;
  o.ik = false;  // XX: the server answers at once, before any application decision
  o.client_to_server.loss = 0;
  SimPair p(test_seed(7), o);
  // The client's later packets are all lost: the server only ever saw the Initiation.
  p.start();
  p.net.run_for(milliseconds(15));
  p.net.link(p.client, p.server).loss = 1.0;
  p.net.run_for(seconds(5), {}, [&] { p.pump_events(); });
  const LinkStats& in = p.net.link_stats(p.client, p.server);
  const LinkStats& out = p.net.link_stats(p.server, p.client);
  ASSERT_EQ(in.delivered, 1u);
  EXPECT_LE(out.bytes_delivered, 3 * in.bytes_delivered);
}

}  // namespace
}  // namespace peerlink::sim
