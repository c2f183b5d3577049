// send() with a vector handed over: the message is not copied on its way into the connection, the
// message arrives intact, and a refused message stays with the caller. This binary replaces operator new
// to count what each thread allocates, so it holds only these tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "integration/host_test_util.hpp"
#include "transport/protocol/reliable_send_stream.hpp"

// The replacements below pair malloc with free, which is right; gcc sees the new-expressions that call
// them and takes them for the built-in operator new.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
thread_local size_t g_allocated = 0;  // bytes this thread asked operator new for
}  // namespace

void* operator new(size_t n) {
  g_allocated += n;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  return operator new(n);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  g_allocated += n;
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return operator new(n, std::nothrow);
}
void* operator new(size_t n, std::align_val_t a) {
  g_allocated += n;
  void* p = nullptr;
  const size_t align = std::max(size_t(a), sizeof(void*));
  if (posix_memalign(&p, align, n ? n : 1) == 0) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return operator new(n, a);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return operator new(n, a, std::nothrow);
}
// Every form of delete frees what the forms above took from malloc: a form left to the runtime (or to a
// sanitizer, which replaces them all) would free with a different allocator.
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace peerlink::test {
namespace {

constexpr size_t kLarge = 4u << 20;
constexpr size_t kCopyBound = 64u << 10;  // what the bookkeeping of one send may allocate

// Bytes this thread allocated while f ran.
template <typename F>
size_t allocated_by(F&& f) {
  const size_t before = g_allocated;
  f();
  return g_allocated - before;
}

TEST(OwnedSend, StreamTakesALargeMessageWithoutCopyingAndSendsItExactly) {
  protocol::ReliableSendStream copied, owned;
  std::vector<uint8_t> a = make_message(1, kLarge), b = a;
  EXPECT_GE(allocated_by([&] { copied.push_message(a.data(), a.size()); }), kLarge);  // the control
  EXPECT_LT(allocated_by([&] { owned.push_message(std::move(b)); }), kCopyBound);
  EXPECT_TRUE(b.empty());
  // A small message behind it goes into a shared buffer, not into the taken one.
  const std::vector<uint8_t> small = make_message(2, 100);
  copied.push_message(small.data(), small.size());
  std::vector<uint8_t> small_owned = small;
  owned.push_message(std::move(small_owned));
  EXPECT_TRUE(small_owned.empty());
  ASSERT_EQ(owned.end_offset(), copied.end_offset());
  // Both streams hold the same records, read back in pieces that straddle the chunk boundaries.
  std::vector<uint8_t> x(owned.end_offset()), y(owned.end_offset());
  for (uint64_t off = 0; off < owned.end_offset(); off += 1000) {
    const size_t n = size_t(std::min<uint64_t>(1000, owned.end_offset() - off));
    copied.copy_out(off, n, x.data() + off);
    owned.copy_out(off, n, y.data() + off);
  }
  EXPECT_EQ(x, y);
  // Acknowledged in full, everything is released.
  owned.on_sent(0, size_t(owned.end_offset()));
  owned.on_acked(0, size_t(owned.end_offset()));
  EXPECT_TRUE(owned.all_acked());
  EXPECT_EQ(owned.buffered_bytes(), 0u);
}

TEST(OwnedSend, HostSendsAHandedOverMessageWithoutCopyingIt) {
  ConnectedPair p;
  ASSERT_TRUE(p.connect());
  std::vector<uint8_t> m = make_message(0, kLarge);
  SendResult r = SendResult::kOk;
  const size_t allocated = allocated_by([&] { r = p.client.send(p.client_conn, std::move(m)); });
  ASSERT_EQ(r, SendResult::kOk);
  EXPECT_TRUE(m.empty());
  EXPECT_LT(allocated, kCopyBound);
  // The same through the copying send(), as the control.
  const std::vector<uint8_t> m1 = make_message(1, kLarge);
  EXPECT_GE(allocated_by([&] { r = p.client.send(p.client_conn, m1.data(), m1.size()); }), kLarge);
  ASSERT_EQ(r, SendResult::kOk);
  // A small one, and an unreliable one, are taken too.
  std::vector<uint8_t> m2 = make_message(2, 300), u = make_message(9, 500);
  ASSERT_EQ(p.client.send(p.client_conn, std::move(m2)), SendResult::kOk);
  EXPECT_TRUE(m2.empty());
  ASSERT_EQ(p.client.send(p.client_conn, std::move(u), send_flags::kUnreliable), SendResult::kOk);
  EXPECT_TRUE(u.empty());

  std::vector<Message> got;
  pump_until({&p.client, &p.server}, [&] {
    std::vector<Message> more;
    p.server.receive(p.server_conn, more);
    for (Message& x : more)
      if (x.reliable()) got.push_back(std::move(x));
    return got.size() >= 3;
  });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].size(), kLarge);
  EXPECT_TRUE(check_message(0, got[0].data(), got[0].size()));
  EXPECT_TRUE(check_message(1, got[1].data(), got[1].size()));
  EXPECT_EQ(got[2].size(), 300u);
  EXPECT_TRUE(check_message(2, got[2].data(), got[2].size()));
}

TEST(OwnedSend, ARefusedMessageStaysWithTheCaller) {
  HostConfig small = test_config();
  small.max_message_size = 1u << 20;
  ConnectedPair p(test_config(), small);
  ASSERT_TRUE(p.connect());
  const std::vector<uint8_t> original = make_message(5, 2u << 20);
  std::vector<uint8_t> m = original;
  EXPECT_EQ(p.client.send(p.client_conn, std::move(m)), SendResult::kMessageTooLarge);
  EXPECT_EQ(m, original);
  EXPECT_EQ(p.client.send(p.client_conn, std::move(m), 0x8000u), SendResult::kInvalidFlags);
  EXPECT_EQ(m, original);
  EXPECT_EQ(p.client.send(p.client_conn, std::move(m), send_flags::kReliable, 7), SendResult::kInvalidLane);
  EXPECT_EQ(m, original);
  EXPECT_EQ(p.client.send(ConnectionHandle(123456), std::move(m)), SendResult::kNoConnection);
  EXPECT_EQ(m, original);
  ASSERT_TRUE(p.client.close(p.client_conn));
  EXPECT_EQ(p.client.send(p.client_conn, std::move(m)), SendResult::kNoConnection);
  EXPECT_EQ(m, original);
}

// Sent while a peer-to-peer connection is still being set up, the message waits in the Host's queue
// (taken, not copied) and leaves once connected.
TEST(OwnedSend, QueuedBeforeAPeerToPeerConnectionExists) {
  auto hub = std::make_shared<SignalingHub>();
  Host a(p2p_config(hub, "a")), b(p2p_config(hub, "b"));
  EventRecorder ea(a), eb(b);
  ASSERT_NE(b.listen_p2p().value_or(kInvalidListenSocket), kInvalidListenSocket);
  Result<ConnectionHandle> connecting = a.connect(SignalingHub::id("b"));
  ASSERT_TRUE(connecting) << connecting.error().message;
  std::vector<uint8_t> m = make_message(3, 1u << 20);
  SendResult r = SendResult::kOk;
  const size_t allocated = allocated_by([&] { r = a.send(*connecting, std::move(m)); });
  ASSERT_EQ(r, SendResult::kOk);
  EXPECT_TRUE(m.empty());
  EXPECT_LT(allocated, kCopyBound);
  ASSERT_TRUE(pump_until({&a, &b}, [&] { return eb.find(ConnectionEventKind::kConnected).has_value(); }));
  const ConnectionHandle s = eb.find(ConnectionEventKind::kConnected)->info.handle;
  auto got = receive_n(b, s, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].size(), 1u << 20);
  EXPECT_TRUE(check_message(3, got[0].data(), got[0].size()));
}

}  // namespace
}  // namespace peerlink::test
