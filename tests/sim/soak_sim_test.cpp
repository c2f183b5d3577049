// Soak: random networks (loss 0–20 %, delay, jitter, reordering, duplication, bottlenecks, MTU) and random
// configurations (IK or XX, lanes, congestion control, key update budget, packet size). Each iteration
// moves 2 MB of reliable messages of random sizes over random lanes plus unreliable side traffic and some
// return traffic, checks every message, then closes gracefully. PEERLINK_SOAK_SEEDS=N runs N iterations;
// PEERLINK_SIM_SEED=S makes S the first one.
#include <set>

#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::LaneConfig;
using protocol::ReceivedMessage;
using protocol::SendResult;
namespace flags = protocol::send_flags;

struct Soak {
  explicit Soak(uint64_t s) : rng(s) {}
  crypto::SeededRandom rng;
  double unit() { return double(rng.next_u32()) / 4294967296.0; }
  uint32_t below(uint32_t n) { return rng.next_u32() % n; }
};

std::string describe(const LinkConfig& l) {
  char b[200];
  std::snprintf(b, sizeof b, "loss %.3f delay %lld ms jitter %lld ms reorder %.2f dup %.2f bw %llu mtu %zu",
                l.loss, (long long)std::chrono::duration_cast<milliseconds>(l.delay).count(),
                (long long)std::chrono::duration_cast<milliseconds>(l.jitter).count(), l.reorder, l.duplicate,
                (unsigned long long)l.bandwidth_bps, l.mtu);
  return b;
}

void soak_iteration(uint64_t seed) {
  Soak r(seed);
  PairOptions o;
  o.ik = r.below(2) == 0;
  for (LinkConfig* l : {&o.client_to_server, &o.server_to_client}) {
    l->loss = r.unit() * 0.2;
    l->delay = milliseconds(1 + r.below(60));
    l->jitter = milliseconds(r.below(11));
    l->reorder = r.unit() * 0.2;
    l->reorder_delay = milliseconds(1 + r.below(20));
    l->duplicate = r.unit() * 0.1;
    if (r.below(2)) {
      l->bandwidth_bps = 5'000'000 + uint64_t(r.below(195)) * 1'000'000;
      l->queue_bytes = 50'000 + r.below(950'000);
    }
    if (r.below(2)) l->mtu = 1280 + r.below(221);
  }
  for (EndpointConfig* e : {&o.client, &o.server}) {
    e->connection.connect_timeout = seconds(60);  // up to 20 % loss each way on every handshake packet
    e->connection.congestion =
        r.below(2) ? protocol::CongestionAlgorithm::kCubic : protocol::CongestionAlgorithm::kNewReno;
    if (r.below(2)) e->connection.key_update_packets = 100 + r.below(2000);
    if (r.below(3) == 0) e->connection.max_packet_size = 1200;
  }
  const uint32_t lanes = 1 + r.below(3);
  std::vector<LaneConfig> lane_configs;
  for (uint32_t i = 0; i < lanes; ++i)
    lane_configs.push_back(LaneConfig{int(r.below(2)), uint16_t(1 + r.below(4))});
  std::printf("[ soak ] seed %llu: %s, %u lane(s), up: %s; down: %s\n", (unsigned long long)seed,
              o.ik ? "IK" : "XX", lanes, describe(o.client_to_server).c_str(),
              describe(o.server_to_client).c_str());

  SimPair p(seed, o);
  ASSERT_TRUE(p.connect(seconds(120))) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  ASSERT_TRUE(c.configure_lanes(p.cc, lane_configs));

  // The plan: reliable messages (lane, size) until 2 MB, each tagged (lane, number); unreliable ones between.
  const uint64_t kTotal = 2'000'000;
  const size_t max_size = size_t(1000 + r.below(100'000));
  struct Planned {
    uint32_t lane;
    bool reliable;
    size_t size;
    uint64_t tag;
  };
  std::vector<Planned> plan;
  std::vector<uint64_t> lane_next(lanes, 1);
  std::vector<std::vector<size_t>> lane_sizes(lanes);
  std::vector<size_t> unreliable_sizes;
  for (uint64_t bytes = 0; bytes < kTotal;) {
    uint32_t lane = r.below(lanes);
    if (r.below(10) == 0) {
      size_t size = 8 + r.below(20'000);
      unreliable_sizes.push_back(size);
      plan.push_back({lane, false, size, uint64_t(1) << 62 | unreliable_sizes.size()});
      continue;
    }
    size_t size = r.below(20) == 0 ? 0 : r.below(uint32_t(max_size));
    lane_sizes[lane].push_back(size);
    plan.push_back({lane, true, size, uint64_t(lane + 1) << 40 | lane_next[lane]++});
    bytes += size;
  }
  // Return traffic: 100 small reliable messages from the server.
  const uint64_t kBack = 100;
  size_t next = 0;
  uint64_t back_sent = 0, back_received = 0;
  std::vector<uint64_t> lane_received(lanes, 0);
  uint64_t reliable_received = 0, reliable_planned = 0;
  for (uint32_t i = 0; i < lanes; ++i)
    reliable_planned += lane_sizes[i].size();
  std::set<uint64_t> unreliable_seen;
  bool failed = false;
  auto step = [&] {
    p.pump_events();
    while (next < plan.size() && c.stats(p.cc, p.net.now())->queued_bytes < 512 * 1024) {
      const Planned& m = plan[next];
      std::vector<uint8_t> data = make_message(m.tag, m.size);
      SendResult res = c.send(p.cc, data.empty() ? nullptr : data.data(), data.size(),
                              m.reliable ? flags::kReliable : flags::kUnreliable, m.lane, p.net.now());
      ASSERT_EQ(res, SendResult::kOk) << p.where();
      ++next;
    }
    while (back_sent < kBack && s.stats(p.sc, p.net.now())->queued_bytes < 64 * 1024) {
      std::vector<uint8_t> data =
          make_message(uint64_t(1) << 50 | (back_sent + 1), 1 + back_sent * 37 % 3000);
      ASSERT_EQ(s.send(p.sc, data.data(), data.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
      ++back_sent;
    }
    ReceivedMessage m;
    while (!failed && s.receive(p.sc, m)) {
      if (m.reliable) {
        uint64_t n = ++lane_received[m.lane];
        const auto& sizes = lane_sizes[m.lane];
        if (m.number != n || n > sizes.size() ||
            !check_message(uint64_t(m.lane + 1) << 40 | n, m.data, sizes[n - 1])) {
          ADD_FAILURE() << "lane " << m.lane << " reliable message " << n << " (number " << m.number << ", "
                        << m.data.size() << " bytes) is wrong; " << p.where();
          failed = true;
        }
        ++reliable_received;
      } else {
        uint64_t index = message_tag(m.data) & ((uint64_t(1) << 62) - 1);
        if (index == 0 || index > unreliable_sizes.size() ||
            !check_message(uint64_t(1) << 62 | index, m.data, unreliable_sizes[index - 1]) ||
            !unreliable_seen.insert(index).second) {
          ADD_FAILURE() << "unreliable message " << index << " is wrong or repeated; " << p.where();
          failed = true;
        }
      }
    }
    while (!failed && c.receive(p.cc, m)) {
      ++back_received;
      if (m.number != back_received ||
          !check_message(uint64_t(1) << 50 | back_received, m.data, 1 + (back_received - 1) * 37 % 3000)) {
        ADD_FAILURE() << "return message " << back_received << " is wrong; " << p.where();
        failed = true;
      }
    }
  };
  p.net.run_for(
      seconds(3600),
      [&] { return failed || (reliable_received == reliable_planned && back_received == kBack); }, step);
  ASSERT_FALSE(failed);
  ASSERT_EQ(reliable_received, reliable_planned) << p.where();
  ASSERT_EQ(back_received, kBack) << p.where();
  auto cs = c.stats(p.cc, p.net.now());
  auto ss = s.stats(p.sc, p.net.now());
  std::printf(
      "[ soak ] seed %llu: done at %.1f s simulated; unreliable %zu of %zu; lost %llu, key updates %llu, "
      "packet size %zu\n",
      (unsigned long long)seed, std::chrono::duration<double>(p.net.now().time_since_epoch()).count(),
      unreliable_seen.size(), unreliable_sizes.size(), (unsigned long long)cs->packets_lost,
      (unsigned long long)cs->key_updates, cs->packet_size);
  EXPECT_EQ(ss->packets_rejected_auth + cs->packets_rejected_auth, 0u) << p.where();
  // A graceful close reaches the server with its reason.
  c.close(p.cc, 1000 + uint32_t(seed % 1000), "soak done", /*linger=*/true, p.net.now());
  p.net.run_for(
      seconds(120), [&] { return p.server_state == ConnectionState::kClosed; }, [&] { p.pump_events(); });
  EXPECT_EQ(p.server_state, ConnectionState::kClosed) << p.where();
  EXPECT_EQ(p.server_reason, 1000 + uint32_t(seed % 1000))
      << "(kRemoteTimeout if every CLOSE was lost) " << p.where();
}

TEST(Soak, RandomNetworksLanesAndMessageKinds_TwoMegabytesExactThenGracefulClose) {
  const uint64_t first = test_seed(5000);
  for (int i = 0; i < soak_seeds(3); ++i) {
    uint64_t seed = first + uint64_t(i) * 7919;
    SCOPED_TRACE("soak seed " + std::to_string(seed) + " (PEERLINK_SIM_SEED=" + std::to_string(seed) +
                 " runs it first)");
    soak_iteration(seed);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace peerlink::sim
