// The Host's watch on a peer-to-peer path (what makes it restart ICE): silence counts from the first send
// left unanswered, never from the last receive.
#include "transport/host/path_watch.hpp"

#include <gtest/gtest.h>

namespace peerlink::host {
namespace {

using namespace std::chrono_literals;
using protocol::Duration;
using protocol::Instant;

constexpr Duration kLookEvery = 250ms;  // Host::Impl::kPathWatchInterval

Instant at(Duration d) {
  return Instant(d);
}

// An idle connection: seconds of quiet both ways, then a keepalive whose answer comes 100 ms later. Every
// look, including the one between the keepalive and its answer, finds no silence to speak of.
TEST(PathWatch, KeepaliveAfterAnIdleSpell_IsNotSilenceWhileItsAnswerIsOnTheWay) {
  PathWatch w;
  uint64_t received = 20, sent = 20;
  Duration t = 0ms;
  for (int keepalive = 0; keepalive < 4; ++keepalive) {
    const Duration send_at = t + 5s, answer_at = send_at + 100ms;
    for (bool sent_it = false; t < answer_at + 1s; t += kLookEvery) {
      if (t >= send_at && !sent_it) {  // the keepalive
        ++sent;
        sent_it = true;
      }
      if (t >= answer_at && received < sent) ++received;
      EXPECT_LE(w.look(at(t), received, sent), kLookEvery) << "at " << protocol::to_us(t) / 1000 << " ms";
    }
  }
  EXPECT_EQ(received, 24u);
}

TEST(PathWatch, SendsLeftUnanswered_SilenceFromTheFirstLookThatSawThem) {
  PathWatch w;
  EXPECT_EQ(w.look(at(0ms), 5, 5), Duration::zero());
  EXPECT_EQ(w.look(at(10s), 5, 5), Duration::zero());  // quiet both ways: nothing to answer
  EXPECT_EQ(w.look(at(10250ms), 5, 6), Duration::zero());
  EXPECT_EQ(w.look(at(10500ms), 5, 9), 250ms);
  EXPECT_EQ(w.look(at(11750ms), 5, 30), 1500ms);
  EXPECT_EQ(w.look(at(12s), 6, 31), Duration::zero());  // an answer: the path carries packets again
  EXPECT_EQ(w.look(at(12250ms), 6, 32), Duration::zero());
  EXPECT_EQ(w.look(at(12500ms), 6, 33), 250ms);
}

TEST(PathWatch, ReceivingWhileSending_NeverSilent) {
  PathWatch w;
  for (uint64_t i = 0; i < 100; ++i)
    EXPECT_EQ(w.look(at(i * kLookEvery), i, 3 * i), Duration::zero());
}

TEST(PathWatch, Restart_ForgetsWhatWasSentOnTheOldPath) {
  PathWatch w;
  EXPECT_EQ(w.look(at(0ms), 1, 1), Duration::zero());
  EXPECT_EQ(w.look(at(250ms), 1, 4), Duration::zero());
  EXPECT_EQ(w.look(at(2s), 1, 9), 1750ms);
  w.restart();  // ICE restored the path
  EXPECT_EQ(w.look(at(2250ms), 1, 10), Duration::zero());
  EXPECT_EQ(w.look(at(2500ms), 1, 11), Duration::zero());
  EXPECT_EQ(w.look(at(4s), 1, 14), 1500ms);
}

}  // namespace
}  // namespace peerlink::host
