// Peer-to-peer connections at the edge of the process's file descriptor limit (RLIMIT_NOFILE lowered for
// the test, as `ulimit -n` would): every ICE stream needs sockets, and a connection that cannot have them
// must end with a clear reason while the connections already made go on.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>
#include <vector>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

size_t open_descriptors() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// Lowers the soft descriptor limit for its lifetime.
class DescriptorLimit {
 public:
  explicit DescriptorLimit(rlim_t soft) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    ok_ = setrlimit(RLIMIT_NOFILE, &lowered) == 0;
  }
  ~DescriptorLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

TEST(P2PLimits, OutOfDescriptors_NewConnectionsEndClearlyAndTheOthersGoOn) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ASSERT_TRUE(b.listen_p2p());

  // Connections made before the limit bites.
  constexpr size_t kBefore = 3;
  std::vector<ConnectionHandle> before;
  for (size_t i = 0; i < kBefore; ++i)
    before.push_back(*a.connect(SignalingHub::id("b")));
  ASSERT_TRUE(pump_until({&a, &b}, [&] {
    return ea.count(ConnectionEventKind::kConnected) == kBefore &&
           eb.count(ConnectionEventKind::kConnected) == kBefore;
  }));

  // Room for a few more sockets only: most of the next connections cannot have theirs.
  constexpr size_t kAfter = 20;
  std::vector<ConnectionHandle> after;
  {
    DescriptorLimit limit(open_descriptors() + 4);
    ASSERT_TRUE(limit.ok());
    for (size_t i = 0; i < kAfter; ++i) {
      Result<ConnectionHandle> c = a.connect(SignalingHub::id("b"));
      ASSERT_TRUE(c) << c.error().message;
      after.push_back(*c);
    }
    // Each of them ends one way or the other; none hangs.
    ASSERT_TRUE(pump_until(
        {&a, &b},
        [&] {
          size_t done = 0;
          for (ConnectionHandle c : after)
            done += ea.find(ConnectionEventKind::kConnected, c) || ea.find(ConnectionEventKind::kClosed, c);
          return done == kAfter;
        },
        20s));
  }
  size_t refused = 0;
  for (ConnectionHandle c : after) {
    auto closed = ea.find(ConnectionEventKind::kClosed, c);
    if (!closed || ea.find(ConnectionEventKind::kConnected, c)) continue;
    ++refused;
    EXPECT_TRUE(closed->info.end_reason == uint32_t(EndReason::kLocalLimitExceeded) ||
                closed->info.end_reason == uint32_t(EndReason::kRemoteBusy))
        << closed->info.end_reason << ": " << closed->info.end_debug;
    EXPECT_NE(closed->info.end_debug.find("file descriptors"), std::string::npos) << closed->info.end_debug;
  }
  EXPECT_GT(refused, 0u) << "the limit should have refused some connections";

  // The connections made before still carry messages both ways: b echoes what it gets.
  for (size_t i = 0; i < kBefore; ++i) {
    const auto m = make_message(i, 3000);
    ASSERT_EQ(a.send(before[i], m.data(), m.size()), SendResult::kOk);
  }
  std::vector<Message> at_b;
  ASSERT_TRUE(pump_until({&a, &b}, [&] {
    b.receive_on_poll_group(kDefaultPollGroup, at_b);
    return at_b.size() >= kBefore;
  }));
  for (const Message& m : at_b)
    ASSERT_EQ(b.send(m.connection(), m.data(), m.size()), SendResult::kOk);
  for (size_t i = 0; i < kBefore; ++i) {
    auto echoed = receive_n(a, before[i], 1);
    ASSERT_EQ(echoed.size(), 1u);
    EXPECT_TRUE(check_message(i, echoed[0].data(), echoed[0].size()));
  }

  // With the limit back, connecting works again.
  for (ConnectionHandle c : after)
    a.close(c);
  Result<ConnectionHandle> again = a.connect(SignalingHub::id("b"));
  ASSERT_TRUE(again);
  EXPECT_TRUE(
      pump_until({&a, &b}, [&] { return ea.find(ConnectionEventKind::kConnected, *again).has_value(); }));
}

}  // namespace
}  // namespace peerlink::test
