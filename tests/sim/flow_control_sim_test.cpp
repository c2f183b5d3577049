// Send buffer and flow control: a receiver that does not read stops the sender without unbounded memory on
// either side, the sender is told (kLimitExceeded), and everything flows again once the receiver reads.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::ReceivedMessage;
using protocol::SendResult;
namespace flags = protocol::send_flags;

constexpr size_t kSendBufferLimit = 1'000'000;
constexpr size_t kReceiveQueueLimit = 512 * 1024;
constexpr uint64_t kLaneWindow = 256 * 1024;
constexpr uint64_t kConnectionWindow = 384 * 1024;

PairOptions small_limits() {
  PairOptions o;
  for (EndpointConfig* e : {&o.client, &o.server}) {
    e->connection.send_buffer_limit = kSendBufferLimit;
    e->connection.receive_queue_limit = kReceiveQueueLimit;
    e->connection.lane_receive_window = kLaneWindow;
    e->connection.connection_receive_window = kConnectionWindow;
    e->connection.idle_timeout = seconds(3);
    e->connection.keepalive_interval = seconds(1);
  }
  both_ways(o, [](LinkConfig& l) {
    l.delay = milliseconds(10);
    l.loss = 0.01;
  });
  return o;
}

TEST(SendBuffer, ReceiverNeverReads_LimitExceededAndMemoryBounded_ThenEverythingArrivesInOrder) {
  SimPair p(test_seed(501), small_limits());
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  const size_t kMessage = 8000;
  uint64_t accepted = 0, limit_results = 0;
  uint64_t max_queued = 0, max_pending = 0;
  uint64_t cap = UINT64_MAX;  // how many messages to send in all
  auto push = [&] {
    while (accepted < cap) {
      std::vector<uint8_t> m = make_message(accepted + 1, kMessage);
      SendResult r = c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now());
      if (r == SendResult::kLimitExceeded) {
        ++limit_results;
        return;
      }
      ASSERT_EQ(r, SendResult::kOk) << p.where();
      ++accepted;
    }
  };
  auto watch = [&] {
    p.pump_events();
    max_queued = std::max(max_queued, c.stats(p.cc, p.net.now())->queued_bytes);
    if (const auto* conn = s.connection(p.sc)) {
      max_pending = std::max<uint64_t>(max_pending, conn->pending_messages() * kMessage);
    }
  };
  // The server never reads for 4 idle timeouts while the client pushes as hard as it can.
  uint64_t accepted_halfway = 0;
  p.net.run_for(seconds(6), {}, [&] {
    push();
    watch();
  });
  accepted_halfway = accepted;
  p.net.run_for(seconds(6), {}, [&] {
    push();
    watch();
  });
  EXPECT_GT(limit_results, 0u);
  EXPECT_EQ(accepted, accepted_halfway) << "blocked senders stay blocked: credit must not leak";
  EXPECT_LE(max_queued, kSendBufferLimit) << p.where();
  // What the receiver holds: at most its queue limit plus one window of credit granted before it hit it.
  EXPECT_LE(max_pending, kReceiveQueueLimit + kConnectionWindow) << p.where();
  EXPECT_GE(accepted * kMessage, kSendBufferLimit / 2) << p.where();
  EXPECT_EQ(p.client_state, ConnectionState::kConnected) << "flow-blocked is not idle; " << p.where();
  EXPECT_EQ(p.server_state, ConnectionState::kConnected) << p.where();
  // Unreliable messages count against the same buffer: one the size just refused is refused too.
  std::vector<uint8_t> u(kMessage);
  EXPECT_EQ(c.send(p.cc, u.data(), u.size(), flags::kUnreliable, 0, p.net.now()), SendResult::kLimitExceeded);

  // Now the server reads; the client sends 8 MB more through the same small limits.
  const uint64_t kTotal = accepted + 1000;
  cap = kTotal;
  uint64_t received = 0;
  bool failed = false;
  p.net.run_for(
      seconds(120), [&] { return received >= kTotal || failed; },
      [&] {
        push();
        watch();
        ReceivedMessage m;
        while (!failed && s.receive(p.sc, m)) {
          ++received;
          if (m.number != received || !check_message(received, m.data, kMessage)) {
            ADD_FAILURE() << "message " << received << " arrived as " << m.number << "; " << p.where();
            failed = true;
          }
        }
      });
  EXPECT_EQ(received, kTotal) << p.where();
  EXPECT_LE(max_queued, kSendBufferLimit);
}

TEST(FlowControl, SlowReader_SenderFollowsItsPaceWithoutStalling) {
  PairOptions o = small_limits();
  // Lossless: a loss would hold the in-order reader up by its recovery time, which is not what this measures.
  both_ways(o, [](LinkConfig& l) { l.loss = 0; });
  SimPair p(test_seed(502), o);
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  // The reader takes 20 kB every 20 ms (1 MB/s); the path could carry far more.
  const uint64_t kTotal = 4'000'000;
  const size_t kMessage = 4000;
  uint64_t sent = 0, received = 0;
  Instant t0 = p.net.now();
  bool failed = false;
  auto send_more = [&] {
    while (sent < kTotal) {
      std::vector<uint8_t> m = make_message(sent / kMessage + 1, kMessage);
      if (c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()) != SendResult::kOk) break;
      sent += kMessage;
    }
  };
  // The simulator steps from event to event; the reader wakes on its own clock, in 20 ms slices.
  while (received < kTotal && !failed && p.net.now() - t0 < seconds(60)) {
    p.net.run_for(milliseconds(20), {}, send_more);
    ReceivedMessage m;
    for (int i = 0; i < 5 && s.receive(p.sc, m); ++i) {
      uint64_t n = received / kMessage + 1;
      if (m.number != n || !check_message(n, m.data, kMessage)) {
        ADD_FAILURE() << "message " << n << " arrived as " << m.number << "; " << p.where();
        failed = true;
      }
      received += m.data.size();
    }
  }
  double secs = std::chrono::duration<double>(p.net.now() - t0).count();
  ASSERT_EQ(received, kTotal) << p.where();
  // 4 s of reading at the reader's pace: credit updates keep up with it, the reader never waits for data.
  EXPECT_LT(secs, 4.1) << p.where();
}

}  // namespace
}  // namespace peerlink::sim
