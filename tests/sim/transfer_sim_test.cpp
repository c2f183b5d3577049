// Bulk transfers through bad networks, checked byte for byte.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

constexpr uint64_t kFiftyMB = 50ull * 1000 * 1000;

struct LossCase {
  double loss;
  uint64_t seed;
};

class BulkTransferLoss : public ::testing::TestWithParam<LossCase> {};

TEST_P(BulkTransferLoss, FiftyMegabytes_ExactSha256) {
  const LossCase c = GetParam();
  PairOptions o;
  o.client_to_server.loss = o.server_to_client.loss = c.loss;
  o.client_to_server.delay = o.server_to_client.delay = milliseconds(5);
  o.client_to_server.bandwidth_bps = o.server_to_client.bandwidth_bps = 1'000'000'000;
  o.client_to_server.queue_bytes = o.server_to_client.queue_bytes = 2'000'000;
  SimPair p(test_seed(c.seed), o);
  ASSERT_TRUE(p.connect()) << p.where();
  TransferResult r = bulk_transfer(p, kFiftyMB, 64 * 1024, seconds(3600));
  std::printf("[ sim ] loss %.0f%% seed %llu: %llu bytes in %.2f s simulated\n", c.loss * 100,
              (unsigned long long)p.net.seed(), (unsigned long long)r.bytes,
              std::chrono::duration<double>(r.elapsed).count());
  ASSERT_TRUE(r.completed) << p.where();
  EXPECT_EQ(r.sent_hash, r.received_hash) << p.where();
  EXPECT_EQ(r.bytes, kFiftyMB);
}

INSTANTIATE_TEST_SUITE_P(Loss, BulkTransferLoss,
                         ::testing::Values(LossCase{0.0, 10}, LossCase{0.01, 11}, LossCase{0.10, 12},
                                           LossCase{0.30, 13}),
                         [](const auto& info) { return "Loss" + std::to_string(int(info.param.loss * 100)); });

}  // namespace
}  // namespace peerlink::sim
