// Messages end to end: reliable messages keep their order and content through loss, reordering and
// duplication (zero-length and 64 MiB ones included); unreliable messages arrive whole or not at all, never
// twice, and the size and no-delay rules hold.
#include <set>

#include "sim/sim_harness.hpp"

namespace peerlink::sim {
namespace {

using protocol::ReceivedMessage;
using protocol::SendResult;
namespace flags = protocol::send_flags;

PairOptions impaired(double loss, double reorder, double duplicate) {
  PairOptions o;
  both_ways(o, [&](LinkConfig& l) {
    l.delay = milliseconds(10);
    l.jitter = milliseconds(3);
    l.loss = loss;
    l.reorder = reorder;
    l.reorder_delay = milliseconds(8);
    l.duplicate = duplicate;
    l.bandwidth_bps = 200'000'000;
    l.queue_bytes = 1'000'000;
  });
  return o;
}

// --- Reliable ---------------------------------------------------------------------------------------------

TEST(ReliableMessages, ThousandRandomSizesThroughLossReorderAndDuplication_EachIntactInOrderNumbered) {
  SimPair p(test_seed(301), impaired(0.05, 0.1, 0.05));
  ASSERT_TRUE(p.connect()) << p.where();
  crypto::SeededRandom rng(p.net.seed());
  const int kCount = 1000;
  std::vector<size_t> sizes(kCount);
  for (size_t& s : sizes) {
    uint32_t r = rng.next_u32();
    s = r % 25 == 0 ? 0 : size_t(rng.next_u32() % (100 * 1000 + 1));
  }
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  int sent = 0, received = 0;
  bool failed = false;
  p.net.run_for(
      seconds(600), [&] { return received == kCount || failed; },
      [&] {
        p.pump_events();
        while (sent < kCount && c.stats(p.cc, p.net.now())->queued_bytes < (2u << 20)) {
          std::vector<uint8_t> m = make_message(uint64_t(sent + 1), sizes[size_t(sent)]);
          ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
          ++sent;
        }
        ReceivedMessage m;
        while (!failed && s.receive(p.sc, m)) {
          ++received;
          if (!m.reliable || m.lane != 0 || m.number != uint64_t(received) ||
              !check_message(uint64_t(received), m.data, sizes[size_t(received - 1)])) {
            ADD_FAILURE() << "message " << received << " arrived as number " << m.number << " with "
                          << m.data.size() << " bytes (want " << sizes[size_t(received - 1)]
                          << "), content intact: "
                          << check_message(uint64_t(received), m.data, sizes[size_t(received - 1)]) << "; "
                          << p.where();
            failed = true;
          }
        }
      });
  ASSERT_FALSE(failed);
  EXPECT_EQ(received, kCount) << p.where();
  auto st = s.stats(p.sc, p.net.now());
  EXPECT_GT(st->packets_duplicate, 0u) << "the link duplicated packets; the receiver must have dropped them";
  EXPECT_EQ(st->messages_received, uint64_t(kCount));
  std::printf("[ sim ] seed %llu: %d messages in %.2f s simulated\n", (unsigned long long)p.net.seed(),
              kCount, std::chrono::duration<double>(p.net.now().time_since_epoch()).count());
}

TEST(ReliableMessages, ZeroLengthMessages_DeliveredAsEmptyMessagesInTheirPlace) {
  SimPair p(test_seed(302), impaired(0.05, 0.1, 0.0));
  ASSERT_TRUE(p.connect()) << p.where();
  // Zero-length first, in runs, alternating with small and fragment-sized messages, and last.
  std::vector<size_t> sizes;
  sizes.push_back(0);
  for (int i = 0; i < 100; ++i)
    sizes.push_back(i % 2 == 0 ? 0 : size_t(1 + i * 37 % 3000));
  for (int i = 0; i < 60; ++i)
    sizes.push_back(0);
  for (int i = 0; i < 40; ++i)
    sizes.push_back(i % 3 == 0 ? 0 : 1500);
  sizes.push_back(0);
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<uint8_t> m = make_message(i + 1, sizes[i]);
    ASSERT_EQ(c.send(p.cc, m.empty() ? nullptr : m.data(), m.size(), flags::kReliable, 0, p.net.now()),
              SendResult::kOk);
  }
  size_t received = 0;
  p.net.run_for(
      seconds(30), [&] { return received == sizes.size(); },
      [&] {
        ReceivedMessage m;
        while (s.receive(p.sc, m)) {
          ASSERT_LT(received, sizes.size());
          ++received;
          ASSERT_EQ(m.number, received) << p.where();
          ASSERT_TRUE(check_message(received, m.data, sizes[received - 1]))
              << "message " << received << " has " << m.data.size() << " bytes, want " << sizes[received - 1];
        }
      });
  EXPECT_EQ(received, sizes.size()) << p.where();

  // A lone zero-length message on an idle connection still goes out (Nagle must not hold it forever).
  Instant t0 = p.net.now();
  ASSERT_EQ(c.send(p.cc, nullptr, 0, flags::kReliable, 0, p.net.now()), SendResult::kOk);
  bool got = false;
  p.net.link(p.client, p.server).loss = 0;
  p.net.run_for(
      seconds(5), [&] { return got; },
      [&] {
        ReceivedMessage m;
        if (s.receive(p.sc, m)) {
          EXPECT_TRUE(m.data.empty());
          EXPECT_EQ(m.number, sizes.size() + 1);
          got = true;
        }
      });
  EXPECT_TRUE(got) << p.where();
  EXPECT_LE(p.net.now() - t0, milliseconds(100)) << "one-way delay plus the Nagle delay";
}

// Sends `total` bytes as messages of `message_size` bytes on an identical network and returns the simulated
// time until the last one arrived intact (SHA-256 over the concatenation), or -1.
double timed_transfer(uint64_t seed, size_t total, size_t message_size, std::string* where) {
  PairOptions o = impaired(0.005, 0.0, 0.0);
  both_ways(o, [](LinkConfig& l) {
    l.delay = milliseconds(5);
    l.jitter = Duration(0);  // jitter reorders, and reordering beyond 3 packets reads as loss
    l.bandwidth_bps = 1'000'000'000;
    l.queue_bytes = 2'000'000;
  });
  SimPair p(seed, o);
  if (!p.connect()) return -1;
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  std::vector<uint8_t> data(total + 1);
  crypto::SeededRandom(seed).fill(data.data(), data.size());
  if (message_size == total && c.send(p.cc, data.data(), total + 1, flags::kReliable, 0, p.net.now()) !=
                                   SendResult::kMessageTooLarge) {
    ADD_FAILURE() << "max_message_size is 64 MiB: one byte more must be refused";
  }
  Sha256 want, got;
  want.update(data.data(), total);
  size_t sent = 0, received = 0;
  Instant t0 = p.net.now();
  p.net.run_for(
      seconds(600), [&] { return received == total; },
      [&] {
        while (sent < total && c.stats(p.cc, p.net.now())->queued_bytes < (4u << 20) + message_size) {
          size_t n = std::min(message_size, total - sent);
          if (c.send(p.cc, data.data() + sent, n, flags::kReliable, 0, p.net.now()) != SendResult::kOk) break;
          sent += n;
        }
        ReceivedMessage m;
        while (s.receive(p.sc, m)) {
          got.update(m.data.data(), m.data.size());
          received += m.data.size();
        }
      });
  double secs = std::chrono::duration<double>(p.net.now() - t0).count();
  // Everything acknowledged is released on the sending side.
  p.net.run_for(seconds(1), [&] { return c.stats(p.cc, p.net.now())->queued_bytes == 0; });
  *where = p.where();
  if (received != total) return -1;
  EXPECT_EQ(got.hex(), want.hex()) << *where;
  EXPECT_EQ(c.stats(p.cc, p.net.now())->queued_bytes, 0u) << *where;
  return secs;
}

TEST(ReliableMessages, SixtyFourMebibyteMessageThroughLoss_IntactAndNoSlowerThanSmallMessages) {
  const size_t kSize = 64u << 20;
  std::string where_big, where_small;
  double big = timed_transfer(test_seed(303), kSize, kSize, &where_big);
  double small = timed_transfer(test_seed(303), kSize, 64 * 1024, &where_small);
  std::printf("[ sim ] one 64 MiB message: %.2f s simulated; as 64 KiB messages: %.2f s\n", big, small);
  ASSERT_GT(big, 0) << where_big;
  ASSERT_GT(small, 0) << where_small;
  // One huge message costs what the same bytes cost in small ones: no per-message rescans or re-copies.
  EXPECT_LT(big, small * 1.5 + 1.0) << where_big;
  EXPECT_LT(big, 60.0) << "537 Mbit over a 1 Gbit/s path with 0.5% loss; " << where_big;
}

// --- Unreliable -------------------------------------------------------------------------------------------

// Unreliable messages carry their index as the tag: the receiver tells which one arrived.
struct UnreliableCheck {
  std::vector<size_t> sizes;  // by index - 1
  std::set<uint64_t> seen;
  uint64_t delivered = 0;
  bool failed = false;

  void on_message(const ReceivedMessage& m, const std::string& where) {
    ++delivered;
    uint64_t tag = message_tag(m.data);
    if (m.reliable || m.number != delivered || tag == 0 || tag > sizes.size() ||
        !check_message(tag, m.data, sizes[tag - 1]) || !seen.insert(tag).second) {
      ADD_FAILURE() << "unreliable message number " << m.number << " (delivery " << delivered << ") of "
                    << m.data.size() << " bytes claims index " << tag << "; duplicate: " << seen.count(tag)
                    << "; " << where;
      failed = true;
    }
  }
};

TEST(UnreliableMessages, LosslessLink_WholeAndFragmentedUpTo64KiB_AllDeliveredIntactInOrder) {
  SimPair p(test_seed(311), PairOptions{});
  ASSERT_TRUE(p.connect()) << p.where();
  UnreliableCheck check;
  check.sizes = {8,    100,  1000, 1100, 1150,  1170,  1200,  1300,
                 1400, 1452, 2000, 5000, 20000, 40000, 65535, 65536};
  crypto::SeededRandom rng(p.net.seed());
  for (int i = 0; i < 300; ++i)
    check.sizes.push_back(8 + rng.next_u32() % (65536 - 8 + 1));
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  size_t sent = 0;
  p.net.run_for(
      seconds(60), [&] { return check.delivered == check.sizes.size() || check.failed; },
      [&] {
        while (sent < check.sizes.size() && c.stats(p.cc, p.net.now())->queued_bytes < 256 * 1024) {
          std::vector<uint8_t> m = make_message(sent + 1, check.sizes[sent]);
          ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kUnreliable, 0, p.net.now()), SendResult::kOk);
          ++sent;
        }
        ReceivedMessage m;
        while (!check.failed && s.receive(p.sc, m)) {
          check.on_message(m, p.where());
          EXPECT_EQ(message_tag(m.data), m.number) << "without loss or reordering they arrive in order";
        }
      });
  EXPECT_EQ(check.delivered, check.sizes.size()) << p.where();
  EXPECT_EQ(s.stats(p.sc, p.net.now())->unreliable_dropped, 0u);
  EXPECT_EQ(c.stats(p.cc, p.net.now())->unreliable_dropped, 0u);
}

TEST(UnreliableMessages, ThroughLossReorderAndDuplication_WholeOrNotAtAll_NeverTwice_SomeDropped) {
  SimPair p(test_seed(312), impaired(0.05, 0.1, 0.05));
  ASSERT_TRUE(p.connect()) << p.where();
  UnreliableCheck check;
  crypto::SeededRandom rng(p.net.seed());
  for (int i = 0; i < 600; ++i) {
    uint32_t r = rng.next_u32();
    // A third fit one packet, the rest need up to ~55 fragments.
    check.sizes.push_back(r % 3 == 0 ? 8 + r % 1100 : 8 + r % (65536 - 8 + 1));
  }
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  size_t sent = 0;
  p.net.run_for(
      seconds(120),
      [&] {
        return check.failed || (sent == check.sizes.size() && c.stats(p.cc, p.net.now())->queued_bytes == 0 &&
                                c.stats(p.cc, p.net.now())->bytes_in_flight == 0);
      },
      [&] {
        while (sent < check.sizes.size() && c.stats(p.cc, p.net.now())->queued_bytes < 256 * 1024) {
          std::vector<uint8_t> m = make_message(sent + 1, check.sizes[sent]);
          ASSERT_EQ(c.send(p.cc, m.data(), m.size(), flags::kUnreliable, 0, p.net.now()), SendResult::kOk);
          ++sent;
        }
        ReceivedMessage m;
        while (!check.failed && s.receive(p.sc, m))
          check.on_message(m, p.where());
      });
  p.net.run_for(seconds(1), {}, [&] {
    ReceivedMessage m;
    while (!check.failed && s.receive(p.sc, m))
      check.on_message(m, p.where());
  });
  EXPECT_FALSE(check.failed);
  EXPECT_EQ(sent, check.sizes.size());
  std::printf("[ sim ] seed %llu: %llu of %zu unreliable messages delivered\n",
              (unsigned long long)p.net.seed(), (unsigned long long)check.delivered, check.sizes.size());
  EXPECT_LT(check.delivered, check.sizes.size()) << "5% packet loss must cost some messages";
  EXPECT_GT(check.delivered, check.sizes.size() / 5) << p.where();
  EXPECT_GT(s.stats(p.sc, p.net.now())->unreliable_dropped, 0u)
      << "incomplete messages are counted as dropped";
  EXPECT_GT(s.stats(p.sc, p.net.now())->packets_duplicate, 0u);
}

TEST(UnreliableMessages, EmptyOnesBetweenOthersInOnePacket_RefusedAsDroppedAndTheOthersAllArrive) {
  SimPair p(test_seed(316), PairOptions{});
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  // Queued in one step, so they would share a packet. The wire format has no empty unreliable fragment
  // (PROTOCOL.md 5.6): an empty one is refused and counted, and must not take the others down with it.
  const std::vector<size_t> sizes = {100, 0, 100, 100, 0, 0, 100};
  std::vector<size_t> want;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<uint8_t> m = make_message(i + 1, sizes[i]);
    SendResult r = c.send(p.cc, m.empty() ? nullptr : m.data(), m.size(), flags::kUnreliable, 0, p.net.now());
    EXPECT_EQ(r, sizes[i] == 0 ? SendResult::kDropped : SendResult::kOk) << "message " << i + 1;
    if (sizes[i] != 0) want.push_back(i + 1);
  }
  std::vector<size_t> got;
  p.net.run_for(
      seconds(2), [&] { return got.size() == want.size(); },
      [&] {
        ReceivedMessage m;
        while (s.receive(p.sc, m)) {
          ASSERT_FALSE(m.reliable);
          ASSERT_TRUE(check_message(message_tag(m.data), m.data, 100));
          got.push_back(size_t(message_tag(m.data)));
        }
      });
  EXPECT_EQ(got, want) << p.where();
  EXPECT_EQ(c.stats(p.cc, p.net.now())->unreliable_dropped, 3u);
  // Empty reliable messages are fine (see ReliableMessages.ZeroLengthMessages_*).
  EXPECT_EQ(c.send(p.cc, nullptr, 0, flags::kReliable, 0, p.net.now()), SendResult::kOk);
}

TEST(UnreliableMessages, AboveSixtyFourKiB_MessageTooLarge_AtTheLimitOk) {
  SimPair p(test_seed(313), PairOptions{});
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  std::vector<uint8_t> m = make_message(1, 64 * 1024 + 1);
  EXPECT_EQ(c.send(p.cc, m.data(), m.size(), flags::kUnreliable, 0, p.net.now()),
            SendResult::kMessageTooLarge);
  EXPECT_EQ(c.send(p.cc, m.data(), m.size(), (flags::kUnreliable | flags::kDropIfBlocked), 0, p.net.now()),
            SendResult::kMessageTooLarge);
  EXPECT_EQ(c.send(p.cc, m.data(), 64 * 1024, flags::kUnreliable, 0, p.net.now()), SendResult::kOk);
  EXPECT_EQ(c.send(p.cc, m.data(), m.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk)
      << "the 64 KiB limit is for unreliable messages only";
}

TEST(UnreliableMessages, NoDelayOnAnIdleConnection_GoesOutAtOnce) {
  SimPair p(test_seed(314), PairOptions{});
  ASSERT_TRUE(p.connect()) << p.where();
  p.net.run_for(seconds(1), {}, [&] { p.pump_events(); });
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  for (uint64_t i = 1; i <= 5; ++i) {
    std::vector<uint8_t> m = make_message(i, 300);
    Instant t0 = p.net.now();
    ASSERT_EQ(c.send(p.cc, m.data(), m.size(), (flags::kUnreliable | flags::kDropIfBlocked), 0, p.net.now()),
              SendResult::kOk)
        << "window empty, nothing queued: a no-delay message must go; " << p.where();
    bool got = false;
    p.net.run_for(
        seconds(1), [&] { return got; },
        [&] {
          ReceivedMessage r;
          if (s.receive(p.sc, r)) {
            EXPECT_TRUE(check_message(i, r.data, 300));
            got = true;
          }
        });
    ASSERT_TRUE(got) << p.where();
    EXPECT_LE(p.net.now() - t0, milliseconds(11)) << "the 10 ms one-way delay, no Nagle wait";
    p.net.run_for(milliseconds(200));
  }
  EXPECT_EQ(c.stats(p.cc, p.net.now())->unreliable_dropped, 0u);
}

TEST(UnreliableMessages, NoDelayWhileTheCongestionWindowIsFull_DroppedAndCounted) {
  PairOptions o;
  o.client_to_server.bandwidth_bps = 5'000'000;
  o.client_to_server.queue_bytes = 64 * 1024;
  SimPair p(test_seed(315), o);
  ASSERT_TRUE(p.connect()) << p.where();
  protocol::Endpoint& c = p.net.endpoint(p.client);
  protocol::Endpoint& s = p.net.endpoint(p.server);
  std::vector<uint8_t> bulk = make_message(7, 50'000);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(c.send(p.cc, bulk.data(), bulk.size(), flags::kReliable, 0, p.net.now()), SendResult::kOk);
  }
  std::vector<uint8_t> small = make_message(9, 1000);
  uint64_t attempts = 0, dropped = 0;
  uint64_t reliable_received = 0;
  p.net.run_for(
      seconds(30), [&] { return reliable_received == 20; },
      [&] {
        auto st = c.stats(p.cc, p.net.now());
        if (st->bytes_in_flight + small.size() + 64 > st->congestion_window) {
          ++attempts;
          SendResult r = c.send(p.cc, small.data(), small.size(),
                                (flags::kUnreliable | flags::kDropIfBlocked), 0, p.net.now());
          EXPECT_EQ(r, SendResult::kDropped)
              << "in flight " << st->bytes_in_flight << " cwnd " << st->congestion_window;
          if (r == SendResult::kDropped) ++dropped;
        }
        ReceivedMessage m;
        while (s.receive(p.sc, m)) {
          ASSERT_TRUE(m.reliable) << "a no-delay message got through a full window";
          ++reliable_received;
        }
      });
  EXPECT_EQ(reliable_received, 20u) << p.where();
  EXPECT_GE(attempts, 10u) << "the window must have been full for a while";
  EXPECT_EQ(dropped, attempts);
  EXPECT_EQ(c.stats(p.cc, p.net.now())->unreliable_dropped, dropped);
}

}  // namespace
}  // namespace peerlink::sim
