// Connection lifecycle: graceful close with linger delivers everything before the close, immediate close
// reaches the peer within a few round trips, the idle timeout ends dead connections on both sides and
// keepalives hold idle but healthy ones open.
#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::ReceivedMessage;
using protocol::SendResult;
namespace flags = protocol::send_flags;

PairOptions path(Duration one_way, double loss = 0) {
  PairOptions o;
  both_ways(o, [&](LinkConfig& l) {
    l.delay = one_way;
    l.loss = loss;
  });
  return o;
}

size_t count_state(const std::vector<Event>& log, ConnectionState s) {
  size_t n = 0;
  for (const Event& e : log)
    n += e.state == s;
  return n;
}

TEST(Lifecycle, MessagesSentBeforeTheHandshakeCompletes_QueuedAndDeliveredInOrder) {
  for (bool ik : {true, false}) {
    SCOPED_TRACE(ik ? "IK" : "XX");
    PairOptions o = path(milliseconds(15), 0.05);
    o.ik = ik;
    SimPair p(test_seed(614) + (ik ? 0 : 1), o);
    p.start();
    protocol::Endpoint& c = p.net.endpoint(p.client);
    for (uint64_t i = 1; i <= 50; ++i) {
      std::vector<uint8_t> m = make_message(i, size_t(i * 997 % 5000));
      ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
    }
    uint8_t b[10] = {};
    EXPECT_EQ(c.send(p.cc, b, sizeof b, (flags::kUnreliable | flags::kDropIfBlocked), 0, p.net.now()),
              SendResult::kDropped)
        << "a no-delay message cannot go before the connection is up";
    uint64_t received = 0;
    p.net.run_for(
        seconds(20), [&] { return received == 50; },
        [&] {
          p.pump_events();
          ReceivedMessage m;
          while (p.sc != 0 && p.net.endpoint(p.server).receive(p.sc, m)) {
            ++received;
            ASSERT_EQ(m.number, received);
            ASSERT_TRUE(check_message(received, m.data, size_t(received * 997 % 5000)));
          }
        });
    EXPECT_EQ(received, 50u) << p.where();
    EXPECT_EQ(p.client_state, ConnectionState::kConnected);
  }
}

TEST(Linger, CloseRightAfterSendingThroughLoss_PeerReadsEveryMessageThenSeesTheCloseWithReasonAndText) {
  SimPair p(test_seed(601), path(milliseconds(10), 0.05));
  std::vector<Event> client_log, server_log;
  ASSERT_TRUE(connect_logged(p, client_log, server_log)) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  crypto::SeededRandom rng(p.net.seed());
  const uint64_t kCount = 300;
  std::vector<size_t> sizes;
  for (uint64_t i = 1; i <= kCount; ++i) {
    sizes.push_back(i % 10 == 0 ? 0 : rng.next_u32() % 6'000);  // ~0.9 MB: 5% loss allows ~300 kB/s here
    std::vector<uint8_t> m = make_message(i, sizes.back());
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  }
  const std::string kDebug = "upload finished: 300 messages";
  c.close(p.cc, 4321, kDebug, /*linger=*/true, p.net.now());
  uint8_t one = 1;
  EXPECT_EQ(c.send(p.cc, &one, 1, flags::kReliable, 0, p.net.now()), SendResult::kInvalidState)
      << "no sends after close";
  uint64_t received = 0, received_when_closed = 0;
  bool closed_seen = false;
  auto read = [&] {
    ReceivedMessage m;
    while (s.receive(p.sc, m)) {
      ++received;
      ASSERT_EQ(m.number, received);
      ASSERT_TRUE(check_message(received, m.data, sizes[received - 1])) << "message " << received;
    }
  };
  p.net.run_for(
      seconds(30), [&] { return closed_seen; },
      [&] {
        // Events first: everything delivered before the close must already be readable when it is seen.
        size_t before = server_log.size();
        pump_events_logged(p, client_log, server_log);
        if (server_log.size() > before && p.server_state == ConnectionState::kClosed && !closed_seen) {
          closed_seen = true;
          read();  // still readable after the close
          received_when_closed = received;
        } else {
          read();
        }
      });
  ASSERT_TRUE(closed_seen) << p.where();
  EXPECT_EQ(received_when_closed, kCount) << "every message before the close event; " << p.where();
  ASSERT_FALSE(server_log.empty());
  const Event& last = server_log.back();
  EXPECT_EQ(last.state, ConnectionState::kClosed);
  EXPECT_EQ(last.reason, 4321u);
  EXPECT_EQ(last.debug, kDebug);
  EXPECT_EQ(count_state(server_log, ConnectionState::kClosed), 1u);
  // The closing side released its handle: no events for it, and its state goes away once the CLOSE is out.
  EXPECT_EQ(count_state(client_log, ConnectionState::kClosed), 0u);
  EXPECT_EQ(count_state(client_log, ConnectionState::kClosing), 0u);
  p.net.run_for(
      seconds(5), [&] { return c.connection_count() == 0; },
      [&] { pump_events_logged(p, client_log, server_log); });
  EXPECT_EQ(c.connection_count(), 0u) << p.where();
  // The closed side keeps its connection until the application releases it; sending is refused.
  EXPECT_EQ(s.connection_count(), 1u);
  uint8_t b = 0;
  EXPECT_EQ(s.send(p.sc, &b, 1, flags::kReliable, 0, p.net.now()), SendResult::kInvalidState);
  s.close(p.sc, 0, "", false, p.net.now());
  p.net.run_for(seconds(1));
  EXPECT_EQ(s.connection_count(), 0u);
}

TEST(Linger, PeerReadsSlowlyBehindSmallWindows_EverythingStillArrivesBeforeTheClose) {
  PairOptions o = path(milliseconds(10), 0.01);
  o.server.connection.lane_receive_window = o.server.connection.connection_receive_window = 128 * 1024;
  o.server.connection.receive_queue_limit = 256 * 1024;
  SimPair p(test_seed(602), o);
  std::vector<Event> client_log, server_log;
  ASSERT_TRUE(connect_logged(p, client_log, server_log)) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  const uint64_t kCount = 150;  // 3 MB: twelve times what the receiver grants at once
  for (uint64_t i = 1; i <= kCount; ++i) {
    std::vector<uint8_t> m = make_message(i, 20'000);
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  }
  c.close(p.cc, 77, "slow reader", /*linger=*/true, p.net.now());
  uint64_t received = 0, received_when_closed = 0;
  bool closed_seen = false;
  // The reader takes 5 messages (100 kB) every 50 ms: about 1.5 s for everything.
  while (!closed_seen && p.net.now() < Instant(seconds(20))) {
    p.net.run_for(milliseconds(50), {}, [&] {
      size_t before = server_log.size();
      pump_events_logged(p, client_log, server_log);
      if (server_log.size() > before && p.server_state == ConnectionState::kClosed) {
        closed_seen = true;
        received_when_closed = received + s.connection(p.sc)->pending_messages();
      }
    });
    ReceivedMessage m;
    for (int i = 0; i < 5 && s.receive(p.sc, m); ++i) {
      ++received;
      ASSERT_TRUE(check_message(received, m.data, 20'000)) << "message " << received;
    }
  }
  ASSERT_TRUE(closed_seen) << p.where();
  EXPECT_EQ(received_when_closed, kCount) << p.where();
  EXPECT_EQ(p.server_reason, 77u);
}

TEST(Linger, PeerUnreachable_GivesUpAfterTheLingerTimeoutAndFreesTheConnection) {
  PairOptions o = path(milliseconds(10));
  o.client.connection.linger_timeout = seconds(2);
  o.server.connection.idle_timeout = seconds(4);
  SimPair p(test_seed(603), o);
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  std::vector<uint8_t> m = make_message(1, 500'000);
  ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  p.net.link(p.client, p.server).loss = 1.0;
  p.net.link(p.server, p.client).loss = 1.0;
  Instant t0 = p.net.now();
  c.close(p.cc, 5, "gone", /*linger=*/true, p.net.now());
  p.net.run_for(
      seconds(10), [&] { return c.connection_count() == 0; }, [&] { p.pump_events(); });
  EXPECT_EQ(c.connection_count(), 0u) << p.where();
  EXPECT_GE(p.net.now() - t0, seconds(2));
  // The linger timeout, then draining for 3 PTOs (backed off, at most max_probe_timeout = 2 s each).
  EXPECT_LE(p.net.now() - t0, seconds(2) + 3 * seconds(2) + milliseconds(500)) << p.where();
  p.net.run_for(
      seconds(10), [&] { return p.server_state == ConnectionState::kClosed; }, [&] { p.pump_events(); });
  EXPECT_EQ(p.server_reason, uint32_t(EndReason::kRemoteTimeout)) << p.where();
}

TEST(Linger, PeerNeverReadsSoLingerTimesOut_PeerIsNotToldItWasAGracefulClose) {
  PairOptions o = path(milliseconds(10));
  o.client.connection.linger_timeout = seconds(2);
  o.server.connection.lane_receive_window = o.server.connection.connection_receive_window = 128 * 1024;
  o.server.connection.receive_queue_limit = 128 * 1024;
  SimPair p(test_seed(611), o);
  std::vector<Event> client_log, server_log;
  ASSERT_TRUE(connect_logged(p, client_log, server_log)) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  for (uint64_t i = 1; i <= 50; ++i) {  // 1 MB, far more than the server lets in without reading
    std::vector<uint8_t> m = make_message(i, 20'000);
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  }
  c.close(p.cc, 1001, "all sent", /*linger=*/true, p.net.now());
  p.net.run_for(
      seconds(10), [&] { return p.server_state == ConnectionState::kClosed; },
      [&] { pump_events_logged(p, client_log, server_log); });
  ASSERT_EQ(p.server_state, ConnectionState::kClosed) << p.where();
  size_t pending = p.net.endpoint(p.server).connection(p.sc)->pending_messages();
  ASSERT_LT(pending, 50u) << "flow control held most of it back";
  // The CLOSE must not claim the application's normal close: the peer did not get everything.
  EXPECT_NE(server_log.back().reason, 1001u) << server_log.back().debug;
  EXPECT_FALSE(is_app_reason(server_log.back().reason)) << server_log.back().debug;
  EXPECT_NE(server_log.back().debug, "all sent");
}

TEST(ImmediateClose, IdleConnection_PeerSeesReasonAndTextWithinARoundTrip) {
  SimPair p(test_seed(604), path(milliseconds(20)));
  std::vector<Event> client_log, server_log;
  ASSERT_TRUE(connect_logged(p, client_log, server_log)) << p.where();
  p.net.run_for(seconds(1), {}, [&] { pump_events_logged(p, client_log, server_log); });
  Instant t0 = p.net.now();
  p.net.endpoint(p.client).close(p.cc, 2002, "user quit", /*linger=*/false, p.net.now());
  p.net.run_for(
      seconds(5), [&] { return p.server_state == ConnectionState::kClosed; },
      [&] { pump_events_logged(p, client_log, server_log); });
  ASSERT_EQ(p.server_state, ConnectionState::kClosed) << p.where();
  EXPECT_LE(p.net.now() - t0, milliseconds(25)) << "one one-way delay; " << p.where();
  EXPECT_EQ(server_log.back().reason, 2002u);
  EXPECT_EQ(server_log.back().debug, "user quit");
}

TEST(ImmediateClose, DuringABulkTransfer_PeerSeesReasonWithinAFewRoundTrips) {
  PairOptions o = path(milliseconds(20));
  o.client_to_server.bandwidth_bps = 50'000'000;
  o.client_to_server.queue_bytes = 150'000;  // up to 24 ms of queueing
  SimPair p(test_seed(605), o);
  std::vector<Event> client_log, server_log;
  ASSERT_TRUE(connect_logged(p, client_log, server_log)) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  std::vector<uint8_t> m = make_message(1, 50'000);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  }
  uint64_t received = 0;
  auto step = [&] {
    pump_events_logged(p, client_log, server_log);
    ReceivedMessage r;
    while (s.receive(p.sc, r))
      ++received;
  };
  p.net.run_for(milliseconds(400), {}, step);
  ASSERT_GT(received, 0u);
  ASSERT_LT(received, 100u);
  Instant t0 = p.net.now();
  c.close(p.cc, 2003, "aborted", /*linger=*/false, p.net.now());
  p.net.run_for(
      seconds(5), [&] { return p.server_state == ConnectionState::kClosed; }, step);
  ASSERT_EQ(p.server_state, ConnectionState::kClosed) << p.where();
  EXPECT_EQ(p.server_reason, 2003u);
  // One-way delay plus the bottleneck queue the CLOSE waits behind.
  EXPECT_LE(p.net.now() - t0, milliseconds(100)) << p.where();
  EXPECT_LT(received, 100u) << "an immediate close does not flush";
  p.net.run_for(
      seconds(3), [&] { return c.connection_count() == 0; }, step);
  EXPECT_EQ(c.connection_count(), 0u) << p.where();
}

TEST(ImmediateClose, FirstCloseLostAndNothingHeardBack_TheProbeRepeatsTheClose) {
  SimPair p(test_seed(612), path(milliseconds(20)));
  ASSERT_TRUE(p.connect()) << p.where();
  p.net.run_for(milliseconds(500), {}, [&] { p.pump_events(); });
  // The CLOSE leaves at once and is lost; nothing the server sends gets back, so only the closing side's
  // own probe timeout can repeat it before its draining period ends.
  Instant t0 = p.net.now();
  p.net.link(p.client, p.server).blackholes.push_back({t0, t0 + milliseconds(1)});
  p.net.link(p.server, p.client).loss = 1.0;
  p.net.endpoint(p.client).close(p.cc, 1500, "bye", /*linger=*/false, p.net.now());
  p.net.run_for(
      seconds(30), [&] { return p.server_state == ConnectionState::kClosed; }, [&] { p.pump_events(); });
  ASSERT_EQ(p.server_state, ConnectionState::kClosed) << p.where();
  EXPECT_EQ(p.server_reason, 1500u) << "the server timed out instead of hearing the CLOSE; " << p.where();
  EXPECT_LE(p.net.now() - t0, seconds(1)) << p.where();
}

TEST(ImmediateClose, RightAfterABurstWithThePeerUnheard_TheCloseStillLeavesAndTheStateIsFreed) {
  SimPair p(test_seed(613), path(milliseconds(20)));
  ASSERT_TRUE(p.connect()) << p.where();
  p.net.run_for(milliseconds(500), {}, [&] { p.pump_events(); });
  protocol::Endpoint& c = p.net.endpoint(p.client);
  // A burst empties the pacer's bucket; then nothing comes back (no ack can wake the closing side).
  std::vector<uint8_t> m = make_message(1, 100'000);
  ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable | flags::kNoNagle, 0, p.net.now()),
            SendResult::kOk);
  p.net.link(p.server, p.client).loss = 1.0;
  p.net.run_for(milliseconds(1), {}, [&] { p.pump_events(); });
  Instant t0 = p.net.now();
  c.close(p.cc, 1600, "burst then bye", /*linger=*/false, p.net.now());
  p.net.run_for(
      seconds(30), [&] { return p.server_state == ConnectionState::kClosed; }, [&] { p.pump_events(); });
  ASSERT_EQ(p.server_state, ConnectionState::kClosed) << p.where();
  EXPECT_EQ(p.server_reason, 1600u) << p.where();
  EXPECT_LE(p.net.now() - t0, milliseconds(200)) << p.where();
  p.net.run_for(seconds(5), [&] { return c.connection_count() == 0; });
  EXPECT_EQ(c.connection_count(), 0u) << "a closed connection must not linger forever; " << p.where();
}

TEST(Lifecycle, BothSidesCloseAtTheSameMoment_BothEndpointsFreeEverything) {
  for (bool linger : {true, false}) {
    SCOPED_TRACE(linger ? "linger" : "immediate");
    SimPair p(test_seed(615) + linger, path(milliseconds(10), 0.05));
    ASSERT_TRUE(p.connect()) << p.where();
    protocol::Endpoint& c = p.net.endpoint(p.client);
    protocol::Endpoint& s = p.net.endpoint(p.server);
    std::vector<uint8_t> m = make_message(1, 50'000);
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
      ASSERT_EQ(s.send(p.sc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
    }
    p.net.run_for(milliseconds(30), {}, [&] { p.pump_events(); });
    c.close(p.cc, 1100, "client done", linger, p.net.now());
    s.close(p.sc, 1200, "server done", linger, p.net.now());
    p.net.run_for(seconds(30), [&] { return c.connection_count() == 0 && s.connection_count() == 0; });
    EXPECT_EQ(c.connection_count(), 0u) << p.where();
    EXPECT_EQ(s.connection_count(), 0u) << p.where();
    Event e;
    EXPECT_FALSE(c.poll_event(e)) << "released connections report nothing";
    EXPECT_FALSE(s.poll_event(e));
  }
}

TEST(IdleTimeout, LinkCutBothWaysDuringATransfer_BothSidesEndWithRemoteTimeoutAtTheIdleTimeout) {
  PairOptions o = path(milliseconds(10));
  for (EndpointConfig* e : {&o.client, &o.server}) {
    e->connection.idle_timeout = seconds(3);
    e->connection.keepalive_interval = seconds(1);
  }
  SimPair p(test_seed(606), o);
  std::vector<Event> client_log, server_log;
  ASSERT_TRUE(connect_logged(p, client_log, server_log)) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  std::vector<uint8_t> m = make_message(1, 10'000);
  Instant cut = p.net.now() + milliseconds(500);
  Instant client_closed = protocol::kNever, server_closed = protocol::kNever;
  p.net.run_for(
      seconds(20), [&] { return client_closed != protocol::kNever && server_closed != protocol::kNever; },
      [&] {
        if (p.net.now() < cut) {
          while (c.stats(p.cc, p.net.now())->queued_bytes < 500'000) {
            c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now());
          }
        } else if (p.net.link(p.client, p.server).loss < 1.0) {
          p.net.link(p.client, p.server).loss = 1.0;
          p.net.link(p.server, p.client).loss = 1.0;
          cut = p.net.now();
        }
        pump_events_logged(p, client_log, server_log);
        if (p.client_state == ConnectionState::kClosed && client_closed == protocol::kNever) {
          client_closed = p.net.now();
        }
        if (p.server_state == ConnectionState::kClosed && server_closed == protocol::kNever) {
          server_closed = p.net.now();
        }
      });
  ASSERT_NE(client_closed, protocol::kNever) << p.where();
  ASSERT_NE(server_closed, protocol::kNever) << p.where();
  EXPECT_EQ(client_log.back().reason, uint32_t(EndReason::kRemoteTimeout)) << client_log.back().debug;
  EXPECT_EQ(server_log.back().reason, uint32_t(EndReason::kRemoteTimeout)) << server_log.back().debug;
  // RFC 9000 §10.1: the idle timer restarts at the first ack-eliciting packet sent after the last one
  // received. The client was sending data at the cut (timer restarts at once: ~3 s); the server only sent
  // acks, so its timer restarts at its next keepalive, up to one keepalive interval later (~4 s).
  EXPECT_GE(client_closed - cut, milliseconds(2900)) << p.where();
  EXPECT_LE(client_closed - cut, milliseconds(3300)) << p.where();
  EXPECT_GE(server_closed - cut, milliseconds(2900)) << p.where();
  EXPECT_LE(server_closed - cut, milliseconds(4300)) << p.where();
}

TEST(IdleTimeout, OneDirectionCut_BothSidesStillEndWithRemoteTimeout) {
  PairOptions o = path(milliseconds(10));
  for (EndpointConfig* e : {&o.client, &o.server}) {
    e->connection.idle_timeout = seconds(3);
    e->connection.keepalive_interval = seconds(1);
  }
  SimPair p(test_seed(607), o);
  ASSERT_TRUE(p.connect()) << p.where();
  Instant cut = p.net.now();
  p.net.link(p.server, p.client).loss = 1.0;  // the client hears nothing; the server still hears the client
  p.net.run_for(
      seconds(20),
      [&] {
        return p.client_state == ConnectionState::kClosed && p.server_state == ConnectionState::kClosed;
      },
      [&] { p.pump_events(); });
  EXPECT_EQ(p.client_reason, uint32_t(EndReason::kRemoteTimeout)) << p.where();
  EXPECT_EQ(p.server_reason, uint32_t(EndReason::kRemoteTimeout)) << p.where();
  // The client gives up after idle timeout + keepalive interval at most (see above) and goes silent; the
  // server, which heard it until then, the same time later.
  EXPECT_LE(p.net.now() - cut, 2 * (seconds(3) + seconds(1)) + milliseconds(300)) << p.where();
}

TEST(Keepalive, IdleButHealthyConnection_StaysConnectedForFiveIdleTimeouts) {
  PairOptions o = path(milliseconds(15), 0.1);
  for (EndpointConfig* e : {&o.client, &o.server}) {
    e->connection.idle_timeout = seconds(4);
    e->connection.keepalive_interval = seconds(1);
  }
  SimPair p(test_seed(608), o);
  ASSERT_TRUE(p.connect()) << p.where();
  const LinkStats up0 = p.net.link_stats(p.client, p.server);
  const LinkStats down0 = p.net.link_stats(p.server, p.client);
  p.net.run_for(seconds(20), {}, [&] { p.pump_events(); });
  EXPECT_EQ(p.client_state, ConnectionState::kConnected) << p.where();
  EXPECT_EQ(p.server_state, ConnectionState::kConnected) << p.where();
  // Keepalives flowed both ways (about one per second and direction, plus their acks), nothing more.
  uint64_t up = p.net.link_stats(p.client, p.server).delivered - up0.delivered;
  uint64_t down = p.net.link_stats(p.server, p.client).delivered - down0.delivered;
  EXPECT_GE(up, 10u);
  EXPECT_GE(down, 10u);
  EXPECT_LE(up + down, 200u) << "keepalives, not a packet storm";
  EXPECT_EQ(p.net.endpoint(p.server).stats(p.sc, p.net.now())->messages_received, 0u);
}

TEST(Keepalive, DefaultTimers_IdleConnectionStaysConnectedForFiveIdleTimeouts) {
  SimPair p(test_seed(609), path(milliseconds(30)));
  ASSERT_TRUE(p.connect()) << p.where();
  p.net.run_for(seconds(100), {}, [&] { p.pump_events(); });  // default idle timeout 20 s, keepalive 5 s
  EXPECT_EQ(p.client_state, ConnectionState::kConnected) << p.where();
  EXPECT_EQ(p.server_state, ConnectionState::kConnected) << p.where();
  // Still usable afterwards.
  uint8_t b[100] = {1};
  ASSERT_EQ(p.net.endpoint(p.client).send(p.cc, b, sizeof b, flags::kReliable, 0, p.net.now()),
            SendResult::kOk);
  bool got = false;
  p.net.run_for(
      seconds(1), [&] { return got; },
      [&] {
        ReceivedMessage m;
        got = p.net.endpoint(p.server).receive(p.sc, m);
      });
  EXPECT_TRUE(got);
}

TEST(Keepalive, OnlyOneSideHasAShortIdleTimeout_ThePeersAcksKeepItOpen) {
  PairOptions o = path(milliseconds(10));
  o.server.connection.idle_timeout = seconds(3);
  o.server.connection.keepalive_interval = seconds(1);  // the client keeps the defaults (20 s / 5 s)
  SimPair p(test_seed(610), o);
  ASSERT_TRUE(p.connect()) << p.where();
  p.net.run_for(seconds(30), {}, [&] { p.pump_events(); });
  EXPECT_EQ(p.client_state, ConnectionState::kConnected) << p.where();
  EXPECT_EQ(p.server_state, ConnectionState::kConnected) << p.where();
}

}  // namespace
}  // namespace peerlink::sim

namespace peerlink::sim {
namespace {

TEST(Keepalive, IntervalLongerThanTheIdleTimeout_IsCappedSoAnIdleHealthyConnectionStays) {
  PairOptions o;
  o.client.connection.idle_timeout = o.server.connection.idle_timeout = seconds(4);
  o.client.connection.keepalive_interval = o.server.connection.keepalive_interval = seconds(60);
  SimPair p(test_seed(52), o);
  ASSERT_TRUE(p.connect()) << p.where();
  p.net.run_for(seconds(30), {}, [&] { p.pump_events(); });
  EXPECT_EQ(p.client_state, ConnectionState::kConnected) << p.where();
  EXPECT_EQ(p.server_state, ConnectionState::kConnected) << p.where();
}

}  // namespace
}  // namespace peerlink::sim
