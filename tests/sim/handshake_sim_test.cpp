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
  // The handshake alone (no Retry with the default RetryPolicy::kUnderLoad): a few RTTs of 20 ms at most.
  EXPECT_LE(p.net.now().time_since_epoch(), milliseconds(100)) << p.where();
  EXPECT_EQ(p.net.endpoint(p.server).counters().retries_sent, 0u);
  EXPECT_EQ(p.net.endpoint(p.server).counters().unproven_initiations, 1u);
}

// The time from connect() until the server holds a connected connection, with the given policy.
Duration time_to_connect(uint64_t seed, protocol::RetryPolicy policy, uint64_t* retries) {
  PairOptions o;
  o.server.retry = policy;
  SimPair p(seed, o);
  const Instant start = p.net.now();
  EXPECT_TRUE(p.connect()) << p.where();
  *retries = p.net.endpoint(p.server).counters().retries_sent;
  return p.net.now() - start;
}

TEST(Handshake, AlwaysValidating_CostsOneMoreRoundTrip) {
  uint64_t retries_under_load = 0, retries_always = 0;
  const Duration under_load =
      time_to_connect(test_seed(11), protocol::RetryPolicy::kUnderLoad, &retries_under_load);
  const Duration always = time_to_connect(test_seed(11), protocol::RetryPolicy::kAlways, &retries_always);
  EXPECT_EQ(retries_under_load, 0u);
  EXPECT_EQ(retries_always, 1u);
  // The links delay 10 ms each way, without jitter: the Retry adds one 20 ms round trip.
  EXPECT_EQ(always - under_load, milliseconds(20));
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

// Connects one after another, faster than the bucket refills: each gives its token back once it proves its
// address, so none is challenged.
TEST(Handshake, ConnectsOneAfterAnother_UnderLoad_NeverChallenged) {
  PairOptions o;
  o.client_to_server.delay = milliseconds(1);
  o.server_to_client.delay = milliseconds(1);
  SimPair p(test_seed(13), o);
  const Instant start = p.net.now();
  const int connects = 3 * int(o.server.unproven_initiations_per_second);
  for (int i = 0; i < connects; ++i) {
    p.client_state = p.server_state = ConnectionState::kConnecting;  // the previous one's are kept
    ASSERT_TRUE(p.connect()) << i << ": " << p.where();
  }
  const Duration took = p.net.now() - start;
  // Without the refunds the bucket would have run dry: it refilled less than a third of what was taken.
  ASSERT_LT(took, seconds(1)) << "the connects must outpace the refill for this test to mean anything";
  const auto& counters = p.net.endpoint(p.server).counters();
  EXPECT_EQ(counters.unproven_initiations, uint64_t(connects));
  EXPECT_EQ(counters.retries_sent, 0u);
}

// Forged Initiations from the client's address, whose Noise message does not read: sender ids from first.
void inject_garbage_initiations(SimPair& p, int count, uint32_t first) {
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> init(protocol::kMinInitiationSize);
    protocol::InitiationPacket ip;
    ip.sender_id = first + uint32_t(i);
    std::vector<uint8_t> noise(96, uint8_t(i));
    ip.noise = noise.data();
    ip.noise_length = noise.size();
    init.resize(protocol::encode_initiation(ip, init.data(), init.size()));
    p.net.inject(p.client, p.server, std::move(init));
  }
}

TEST(Handshake, SpoofedInitiations_AllocateNoStateAndAreNotAmplified) {
  PairOptions o;
  o.server.retry = protocol::RetryPolicy::kAlways;
  SimPair p(test_seed(6), o);
  // Forged Initiations (from an address that would never answer): only Retries go back, each smaller than
  // the Initiation that caused it, and no handshake work is done.
  inject_garbage_initiations(p, 50, 1000);
  p.net.run_for(milliseconds(100));
  EXPECT_EQ(p.net.endpoint(p.server).connection_count(), 0u);
  EXPECT_EQ(p.net.endpoint(p.server).counters().retries_sent, 50u);
  EXPECT_EQ(p.net.endpoint(p.server).counters().handshake_failures, 0u);
  const LinkStats& back = p.net.link_stats(p.server, p.client);
  EXPECT_LE(back.bytes_delivered, 50u * protocol::kMinInitiationSize / 3);
}

// The default policy under a flood: the bucket's Initiations run the handshake (and fail), the rest are
// challenged; it refills with time; a real client that comes while it is empty pays the Retry and connects.
TEST(Handshake, SpoofedInitiations_UnderLoad_OnlyTheBucketCostsHandshakeWork) {
  PairOptions o;
  ASSERT_EQ(o.server.retry, protocol::RetryPolicy::kUnderLoad);
  const uint32_t bucket = o.server.unproven_initiations_per_second;
  SimPair p(test_seed(12), o);
  const auto& counters = p.net.endpoint(p.server).counters();
  inject_garbage_initiations(p, 50, 1000);
  p.net.run_for(milliseconds(100));
  EXPECT_EQ(p.net.endpoint(p.server).connection_count(), 0u);
  EXPECT_EQ(counters.unproven_initiations, 0u) << "none read correctly, so none made a connection";
  EXPECT_EQ(counters.handshake_failures, bucket);
  EXPECT_EQ(counters.retries_sent, 50u - bucket);
  const LinkStats& back = p.net.link_stats(p.server, p.client);
  EXPECT_LE(back.bytes_delivered, 50u * protocol::kMinInitiationSize / 3);

  // The bucket is empty (100 ms refilled about 3): a real client is challenged first, then connects.
  inject_garbage_initiations(p, 10, 2000);
  p.net.run_for(milliseconds(1));
  const uint64_t retries_before = counters.retries_sent;
  ASSERT_TRUE(p.connect()) << p.where();
  EXPECT_EQ(counters.retries_sent, retries_before + 1);

  // A second later the bucket is full again: requests run at once.
  p.net.run_for(seconds(1));
  const uint64_t failures_before = counters.handshake_failures, retries_after = counters.retries_sent;
  inject_garbage_initiations(p, int(bucket), 3000);
  p.net.run_for(milliseconds(100));
  EXPECT_EQ(counters.handshake_failures, failures_before + bucket);
  EXPECT_EQ(counters.retries_sent, retries_after);
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
