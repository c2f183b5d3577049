// Path MTU probing: packets start at 1200 bytes and grow to the largest size the path carries, up to
// max_packet_size, per direction; data keeps flowing exactly while the search runs.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

struct MtuCase {
  const char* name;
  size_t max_packet;
  size_t mtu_up;    // client to server
  size_t mtu_down;  // server to client
  double loss;
  size_t client_low, client_high;  // expected final packet size, inclusive range
  size_t server_low, server_high;
};

class PathMtuSearch : public ::testing::TestWithParam<MtuCase> {};

TEST_P(PathMtuSearch, TransferExactAndPacketSizeSettlesAtWhatThePathCarries) {
  const MtuCase m = GetParam();
  PairOptions o;
  o.client.connection.max_packet_size = o.server.connection.max_packet_size = m.max_packet;
  o.client_to_server.mtu = m.mtu_up;
  o.server_to_client.mtu = m.mtu_down;
  both_ways(o, [&](LinkConfig& l) {
    l.delay = milliseconds(10);
    l.loss = m.loss;
  });
  SimPair p(test_seed(801), o);
  ASSERT_TRUE(p.connect()) << p.where();
  // Data in both directions, so that both sides probe while busy.
  Instant settled = p.net.now();
  size_t last_size = 0;
  uint64_t echoed = 0;
  TransferResult r = bulk_transfer(p, 3'000'000, 20'000, seconds(120), 1u << 20, [&] {
    size_t size = p.net.endpoint(p.client).stats(p.cc, p.net.now())->packet_size;
    if (size != last_size) {
      last_size = size;
      settled = p.net.now();
    }
    if (echoed < 200) {
      std::vector<uint8_t> back = make_message(echoed + 1, 5000);
      if (p.net.endpoint(p.server).send(p.sc, back.data(), back.size(), protocol::send_flags::kReliable, 0,
                                        p.net.now()) == protocol::SendResult::kOk) {
        ++echoed;
      }
    }
  });
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash);
  uint64_t back = 0;
  p.net.run_for(
      seconds(10), [&] { return back == echoed; },
      [&] {
        protocol::ReceivedMessage msg;
        while (p.net.endpoint(p.client).receive(p.cc, msg)) {
          ++back;
          ASSERT_TRUE(check_message(back, msg.data, 5000));
        }
      });
  EXPECT_EQ(back, echoed) << p.where();
  size_t client_size = p.net.endpoint(p.client).stats(p.cc, p.net.now())->packet_size;
  size_t server_size = p.net.endpoint(p.server).stats(p.sc, p.net.now())->packet_size;
  std::printf("[ sim ] %s: client %zu, server %zu bytes; client settled after %.2f s\n", m.name, client_size,
              server_size, std::chrono::duration<double>(settled.time_since_epoch()).count());
  EXPECT_GE(client_size, m.client_low) << p.where();
  EXPECT_LE(client_size, m.client_high) << p.where();
  EXPECT_GE(server_size, m.server_low) << p.where();
  EXPECT_LE(server_size, m.server_high) << p.where();
  // The search converges in a few seconds, not over the whole transfer.
  EXPECT_LE(settled.time_since_epoch(), seconds(5)) << p.where();
  // Only probes ever exceed the path: data packets are never sent too big.
  EXPECT_LE(p.net.link_stats(p.client, p.server).too_big, 20u);
  EXPECT_LE(p.net.link_stats(p.server, p.client).too_big, 20u);
}

INSTANTIATE_TEST_SUITE_P(
    Paths, PathMtuSearch,
    ::testing::Values(MtuCase{"Max1452Link1400", 1452, 1400, 1400, 0.0, 1351, 1400, 1351, 1400},
                      MtuCase{"Max1452Link1500", 1452, 1500, 1500, 0.0, 1452, 1452, 1452, 1452},
                      MtuCase{"Max1452LinkExactly1452", 1452, 1452, 1452, 0.0, 1452, 1452, 1452, 1452},
                      MtuCase{"Max1200Link1500", 1200, 1500, 1500, 0.0, 1200, 1200, 1200, 1200},
                      MtuCase{"Max1452Link1280", 1452, 1280, 1280, 0.0, 1240, 1280, 1240, 1280},
                      MtuCase{"Max1452LinkOnly1200", 1452, 1200, 1200, 0.0, 1200, 1200, 1200, 1200},
                      MtuCase{"AsymmetricUp1300Down1500", 1452, 1300, 1500, 0.0, 1260, 1300, 1452, 1452},
                      MtuCase{"Max1452Link1400WithLoss", 1452, 1400, 1400, 0.02, 1351, 1400, 1351, 1400},
                      MtuCase{"Max9000Link9000", 9000, 9000, 9000, 0.0, 8900, 9000, 8900, 9000}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace peerlink::sim
