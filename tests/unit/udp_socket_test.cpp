// UdpSocket, SendBatch, ReceiveBatch and the sockaddr conversions (src/transport/io/), over loopback only.
#include "transport/io/udp_socket.hpp"

#include <dlfcn.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "transport/io/socket_address.hpp"

// Loopback never makes a UDP sender wait: loopback_xmit() releases the sender's send-buffer charge as it
// hands each datagram on, so no buffer size makes sendmmsg() report EAGAIN, and loopback never refuses GSO.
// To test how send() handles those answers, this file interposes sendmmsg(), the call udp_socket.cpp sends
// with, and plays a script of results for one chosen socket; every other call passes straight through.
namespace {

struct ScriptedSend {
  int error = 0;             // fail one call with this errno, or, if 0,
  size_t pass_messages = 0;  // let this many messages through to the kernel (over as many calls as it takes)
};

struct SendScript {
  int fd = -1;
  std::deque<ScriptedSend> steps;
  std::vector<size_t> failed_call_message_counts;  // datagrams of the first message of each failed call
};

SendScript g_send_script;

size_t first_message_datagrams(const mmsghdr* msgs, unsigned vlen) {
  return vlen == 0 ? 0 : size_t(msgs[0].msg_hdr.msg_iovlen);
}

}  // namespace

extern "C" int sendmmsg(int fd, mmsghdr* msgs, unsigned int vlen, int flags) {
  using SendFunction = int (*)(int, mmsghdr*, unsigned int, int);
  static const SendFunction real = reinterpret_cast<SendFunction>(dlsym(RTLD_NEXT, "sendmmsg"));
  SendScript& script = g_send_script;
  if (fd != script.fd || script.steps.empty()) return real(fd, msgs, vlen, flags);
  ScriptedSend& step = script.steps.front();
  if (step.error != 0) {
    script.failed_call_message_counts.push_back(first_message_datagrams(msgs, vlen));
    errno = step.error;
    script.steps.pop_front();
    return -1;
  }
  int rc = real(fd, msgs, std::min<unsigned>(vlen, unsigned(step.pass_messages)), flags);
  if (rc > 0) step.pass_messages -= size_t(rc);
  if (step.pass_messages == 0) script.steps.pop_front();
  return rc;
}

namespace peerlink::io {
namespace {

// The bytes of datagram `index` of a test stream: every datagram differs from its neighbours everywhere.
std::vector<uint8_t> make_datagram(uint32_t index, size_t size) {
  std::vector<uint8_t> d(size);
  for (size_t j = 0; j < size; ++j)
    d[j] = uint8_t(index * 131 + j * 7 + (j >> 8));
  return d;
}

void add(SendBatch& batch, const std::vector<uint8_t>& datagram, const Address& to) {
  ASSERT_FALSE(batch.full());
  uint8_t* buffer = batch.next_buffer();
  ASSERT_NE(buffer, nullptr);
  std::copy(datagram.begin(), datagram.end(), buffer);
  batch.commit(datagram.size(), to);
}

struct Received {
  std::vector<uint8_t> bytes;
  Address from;
};

// Waits for `want` datagrams, at most 2 s for each next one, so a lost datagram fails the test instead of
// hanging it.
std::vector<Received> receive_count(UdpSocket& socket, size_t want, size_t slots = 16) {
  ReceiveBatch batch(slots);
  std::vector<Received> out;
  for (int rounds = 0; out.size() < want && rounds < 10000; ++rounds) {
    pollfd p{socket.fd(), POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    size_t n = socket.receive(batch);
    EXPECT_EQ(n, batch.size());
    for (size_t i = 0; i < n; ++i)
      out.push_back(
          Received{std::vector<uint8_t>(batch[i].data, batch[i].data + batch[i].size), batch[i].from});
  }
  return out;
}

// Nothing more queued: the sender sent no extra datagrams (duplicates, leftovers of a failed GSO send).
void expect_nothing_queued(UdpSocket& socket) {
  ReceiveBatch batch(4);
  EXPECT_EQ(socket.receive(batch), 0u);
}

std::unique_ptr<UdpSocket> open_or_fail(const std::string& text, UdpSocketOptions options = {}) {
  Result<Address> address = Address::parse(text);
  EXPECT_TRUE(address.has_value()) << address.error().message;
  if (!address) return nullptr;
  Error error;
  std::unique_ptr<UdpSocket> socket = UdpSocket::open(*address, options, &error);
  EXPECT_NE(socket, nullptr) << "open " << text << ": " << error.message;
  return socket;
}

// ::1 may be missing (IPv6 disabled in this container); such tests skip rather than fail.
std::unique_ptr<UdpSocket> open_ipv6_loopback(std::string* why, UdpSocketOptions options = {}) {
  Error error;
  std::unique_ptr<UdpSocket> socket = UdpSocket::open(*Address::parse("[::1]:0"), options, &error);
  if (!socket && why) *why = error.message;
  return socket;
}

// Every test that scripts sendmmsg() results holds one of these, so a failed test cannot leave a script
// behind for a later socket that reuses the descriptor.
struct ScopedSendScript {
  ScopedSendScript(const UdpSocket& socket, std::deque<ScriptedSend> steps) {
    g_send_script = SendScript{};
    g_send_script.fd = socket.fd();
    g_send_script.steps = std::move(steps);
  }
  ~ScopedSendScript() { g_send_script = SendScript{}; }
  bool finished() const { return g_send_script.steps.empty(); }
  const std::vector<size_t>& failed_calls() const { return g_send_script.failed_call_message_counts; }
};

// ---------------------------------------------------------------------------------------------------------
// socket_address

TEST(SocketAddress, IPv4ForDualStackSocket_IsV4MappedAndConvertsBackToPlainIPv4) {
  Address v4 = Address::ipv4({192, 0, 2, 1}, 4242);
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(v4, AF_INET6, &ss);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  sockaddr_in6 sin6;
  std::memcpy(&sin6, &ss, sizeof sin6);
  EXPECT_EQ(sin6.sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(sin6.sin6_port), 4242);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr));
  Address back = from_sockaddr(ss, len);
  EXPECT_TRUE(back.is_ipv4());
  EXPECT_EQ(back, v4);
}

TEST(SocketAddress, IPv4Socket_TakesIPv4AndMappedButNotIPv6) {
  sockaddr_storage ss;
  Address v4 = Address::ipv4({198, 51, 100, 3}, 53);
  ASSERT_EQ(to_sockaddr(v4, AF_INET, &ss), sizeof(sockaddr_in));
  EXPECT_EQ(from_sockaddr(ss, sizeof(sockaddr_in)), v4);
  ASSERT_EQ(to_sockaddr(v4.mapped(), AF_INET, &ss), sizeof(sockaddr_in));
  EXPECT_EQ(from_sockaddr(ss, sizeof(sockaddr_in)), v4);
  EXPECT_EQ(to_sockaddr(*Address::parse("[2001:db8::1]:53"), AF_INET, &ss), 0u);
  EXPECT_EQ(to_sockaddr(Address(), AF_INET, &ss), 0u);
  EXPECT_EQ(to_sockaddr(Address(), AF_INET6, &ss), 0u);
}

TEST(SocketAddress, IPv6WithScope_RoundTrips) {
  Address a = *Address::parse("[fe80::1%7]:9000");
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(a, AF_INET6, &ss);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  EXPECT_EQ(from_sockaddr(ss, len), a);
}

TEST(SocketAddress, ShortLengthOrUnknownFamily_GivesUnspecified) {
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(*Address::parse("[2001:db8::1]:1"), AF_INET6, &ss);
  EXPECT_TRUE(from_sockaddr(ss, len - 1).is_unspecified());
  ss.ss_family = AF_UNIX;
  EXPECT_TRUE(from_sockaddr(ss, sizeof ss).is_unspecified());
}

// ---------------------------------------------------------------------------------------------------------
// SendBatch

TEST(SendBatch, FillAndClear_TracksSizeAndRefusesWhenFull) {
  SendBatch batch(3);
  EXPECT_TRUE(batch.empty());
  Address to = Address::loopback_v4(9);
  for (uint32_t i = 0; i < 3; ++i)
    add(batch, make_datagram(i, 100 + i), to);
  EXPECT_TRUE(batch.full());
  EXPECT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch.next_buffer(), nullptr);
  EXPECT_EQ(batch.length(2), 102u);
  EXPECT_EQ(std::vector<uint8_t>(batch.data(1), batch.data(1) + 101), make_datagram(1, 101));
  batch.clear();
  EXPECT_TRUE(batch.empty());
  EXPECT_NE(batch.next_buffer(), nullptr);
}

// ---------------------------------------------------------------------------------------------------------
// UdpSocket: opening

TEST(UdpSocketOpen, IPv4Loopback_BindsAnEphemeralPort) {
  auto socket = open_or_fail("127.0.0.1:0");
  ASSERT_NE(socket, nullptr);
  EXPECT_EQ(socket->family(), AF_INET);
  EXPECT_TRUE(socket->local_address().is_ipv4());
  EXPECT_TRUE(socket->local_address().is_loopback());
  EXPECT_NE(socket->local_address().port(), 0);
}

TEST(UdpSocketOpen, Unspecified_IsOneDualStackSocketOnAny) {
  Error error;
  auto socket = UdpSocket::open(Address(), {}, &error);
  ASSERT_NE(socket, nullptr) << error.message;
  EXPECT_TRUE(socket->local_address().is_any());
  EXPECT_NE(socket->local_address().port(), 0);
  if (socket->family() == AF_INET) GTEST_SKIP() << "no IPv6 on this host: fell back to 0.0.0.0";
  EXPECT_TRUE(socket->local_address().is_ipv6());
  int v6only = -1;
  socklen_t len = sizeof v6only;
  ASSERT_EQ(getsockopt(socket->fd(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
  EXPECT_EQ(v6only, 0);
}

TEST(UdpSocketOpen, PortInUse_FailsAndSaysWhy) {
  auto first = open_or_fail("127.0.0.1:0");
  ASSERT_NE(first, nullptr);
  Error error;
  auto second = UdpSocket::open(first->local_address(), {}, &error);
  EXPECT_EQ(second, nullptr);
  EXPECT_EQ(error.code, ErrorCode::kAddressInUse);
  EXPECT_NE(error.message.find("bind 127.0.0.1:"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find(std::strerror(EADDRINUSE)), std::string::npos) << error.message;
}

// ---------------------------------------------------------------------------------------------------------
// UdpSocket: exchanging datagrams

// Sends datagrams of many sizes (so no GSO run forms) from a to b and checks that b got exactly them.
void exchange_and_verify(UdpSocket& a, UdpSocket& b, uint32_t first_index) {
  const std::vector<size_t> sizes = {1, 1500, 17, 1200, 1199, 0, 512, 1500, 3, 1024, 77, 1400};
  SendBatch batch(sizes.size());
  std::vector<std::vector<uint8_t>> sent;
  for (size_t i = 0; i < sizes.size(); ++i) {
    sent.push_back(make_datagram(first_index + uint32_t(i), sizes[i]));
    add(batch, sent.back(), b.local_address());
  }
  ASSERT_TRUE(a.send(batch));
  EXPECT_TRUE(batch.empty());
  std::vector<Received> got = receive_count(b, sent.size(), 4);
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(got[i].bytes, sent[i]) << "datagram " << i;
    EXPECT_EQ(got[i].from, a.local_address()) << "datagram " << i;
  }
  expect_nothing_queued(b);
  EXPECT_EQ(a.counters().send_errors, 0u);
  EXPECT_EQ(b.counters().receive_errors, 0u);
}

TEST(UdpSocketExchange, IPv4Loopback_BatchesArriveIntactBothWays) {
  auto a = open_or_fail("127.0.0.1:0");
  auto b = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a && b);
  exchange_and_verify(*a, *b, 0);
  exchange_and_verify(*b, *a, 100);
  EXPECT_EQ(a->counters().datagrams_sent, 12u);
  EXPECT_EQ(b->counters().datagrams_received, 12u);
}

// open_connected: a socket beside another one's address (libnice's socket of an ICE pair), connected to one
// peer, takes that peer's datagrams; the other socket keeps the rest; nobody else can join them later.
void expect_split(const char* loopback) {
  const std::string any = std::string(loopback) + ":0";
  auto shared = open_or_fail(any.c_str());
  auto peer = open_or_fail(any.c_str());
  auto stranger = open_or_fail(any.c_str());
  ASSERT_TRUE(shared && peer && stranger);
  Error error;
  auto own = UdpSocket::open_connected(shared->fd(), peer->local_address(), {}, &error);
  ASSERT_TRUE(own) << error.message;
  EXPECT_EQ(own->local_address(), shared->local_address());
  exchange_and_verify(*peer, *own, 0);           // the peer's datagrams come to the connected socket
  exchange_and_verify(*own, *peer, 100);         // and it sends to the peer
  exchange_and_verify(*stranger, *shared, 200);  // anyone else's still go to the shared socket
  expect_nothing_queued(*own);
  // No third socket can bind there any more, with or without address reuse.
  EXPECT_FALSE(UdpSocket::open(shared->local_address(), {}, &error));
  EXPECT_EQ(error.code, ErrorCode::kAddressInUse);
  EXPECT_FALSE(UdpSocket::open_connected(shared->fd(), stranger->local_address(), {}, &error));
  EXPECT_EQ(error.code, ErrorCode::kAddressInUse) << error.message;
  // Closed: the peer's datagrams go back to the shared socket.
  own.reset();
  exchange_and_verify(*peer, *shared, 300);
}

TEST(UdpSocketConnected, IPv4_TakesThePeersDatagramsAndLeavesTheRest) {
  expect_split("127.0.0.1");
}
TEST(UdpSocketConnected, IPv6_TakesThePeersDatagramsAndLeavesTheRest) {
  expect_split("[::1]");
}

TEST(UdpSocketConnected, WildcardOrNotASocket_RefusedWithAReason) {
  auto wildcard = open_or_fail("[::]:0");
  auto peer = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(wildcard && peer);
  Error error;
  EXPECT_FALSE(UdpSocket::open_connected(wildcard->fd(), peer->local_address(), {}, &error));
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(error.message.empty());
  EXPECT_FALSE(UdpSocket::open_connected(-1, peer->local_address(), {}, &error));
  EXPECT_FALSE(UdpSocket::open_connected(0, peer->local_address(), {}, &error));  // stdin
}

TEST(UdpSocketExchange, IPv6Loopback_BatchesArriveIntactBothWays) {
  std::string why;
  auto a = open_ipv6_loopback(&why);
  if (!a) GTEST_SKIP() << "::1 unavailable: " << why;
  auto b = open_ipv6_loopback(&why);
  ASSERT_NE(b, nullptr) << why;
  EXPECT_TRUE(a->local_address().is_ipv6());
  exchange_and_verify(*a, *b, 0);
  exchange_and_verify(*b, *a, 100);
}

TEST(UdpSocketExchange, DualStackSocket_SeesIPv4PeerAsPlainIPv4AndCanReply) {
  Error error;
  auto dual = UdpSocket::open(Address(), {}, &error);
  ASSERT_NE(dual, nullptr) << error.message;
  auto v4 = open_or_fail("127.0.0.1:0");
  ASSERT_NE(v4, nullptr);
  Address dual_on_loopback = Address::loopback_v4(dual->local_address().port());

  SendBatch batch;
  add(batch, make_datagram(1, 300), dual_on_loopback);
  ASSERT_TRUE(v4->send(batch));
  std::vector<Received> got = receive_count(*dual, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, make_datagram(1, 300));
  EXPECT_TRUE(got[0].from.is_ipv4()) << got[0].from.to_string();
  EXPECT_EQ(got[0].from, v4->local_address());

  // The reply goes to the plain IPv4 address the dual-stack socket reported.
  add(batch, make_datagram(2, 400), got[0].from);
  ASSERT_TRUE(dual->send(batch));
  got = receive_count(*v4, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, make_datagram(2, 400));
  EXPECT_EQ(got[0].from, dual_on_loopback);
}

TEST(UdpSocketExchange, NothingQueued_ReceiveReturnsZero) {
  auto a = open_or_fail("127.0.0.1:0");
  ASSERT_NE(a, nullptr);
  ReceiveBatch batch;
  EXPECT_EQ(a->receive(batch), 0u);
  EXPECT_EQ(batch.size(), 0u);
  EXPECT_EQ(a->counters().receive_errors, 0u);
}

// ---------------------------------------------------------------------------------------------------------
// UdpSocket: GSO and GRO

class UdpSocketGso : public ::testing::TestWithParam<bool> {};  // the receiver's GRO on or off

TEST_P(UdpSocketGso, FortyEqualAndAShorterLast_ArriveAsFortyOneInOrder) {
  UdpSocketOptions receiver_options;
  receiver_options.enable_gro = GetParam();
  auto tx = open_or_fail("127.0.0.1:0");
  auto rx = open_or_fail("127.0.0.1:0", receiver_options);
  ASSERT_TRUE(tx && rx);
  if (!GetParam()) {
    EXPECT_FALSE(rx->gro_enabled());
  }

  SendBatch batch;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 41; ++i) {
    sent.push_back(make_datagram(i, i < 40 ? 1200 : 700));
    add(batch, sent.back(), rx->local_address());
  }
  ASSERT_TRUE(tx->send(batch));
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(tx->counters().datagrams_sent, 41u);
  if (tx->gso_enabled()) {
    EXPECT_GT(tx->counters().gso_sends, 0u);
  }

  std::vector<Received> got = receive_count(*rx, 41);
  ASSERT_EQ(got.size(), 41u);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i].bytes, sent[i]) << "datagram " << i;
  expect_nothing_queued(*rx);
  EXPECT_EQ(rx->counters().datagrams_received, 41u);
  std::cout << "[ info     ] sender GSO " << (tx->gso_enabled() ? "on" : "off") << ", "
            << tx->counters().gso_sends << " GSO sends; receiver GRO " << (rx->gro_enabled() ? "on" : "off")
            << ", " << rx->counters().gro_coalesced << " coalesced receives\n";
}

TEST_P(UdpSocketGso, CoalescedReceive_MayExceedTheSlotCount) {
  UdpSocketOptions receiver_options;
  receiver_options.enable_gro = GetParam();
  auto tx = open_or_fail("127.0.0.1:0");
  auto rx = open_or_fail("127.0.0.1:0", receiver_options);
  ASSERT_TRUE(tx && rx);
  SendBatch batch;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 10; ++i) {
    sent.push_back(make_datagram(i, 1000));
    add(batch, sent.back(), rx->local_address());
  }
  ASSERT_TRUE(tx->send(batch));
  std::vector<Received> got = receive_count(*rx, 10, /*slots=*/1);
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i].bytes, sent[i]) << "datagram " << i;
}

INSTANTIATE_TEST_SUITE_P(ReceiverGro, UdpSocketGso, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "GroOn" : "GroOff";
                         });

TEST(UdpSocketGsoRuns, MixedDestinationsSizesAndLongRuns_AllArriveInOrder) {
  auto tx = open_or_fail("127.0.0.1:0");
  auto rx1 = open_or_fail("127.0.0.1:0");
  auto rx2 = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(tx && rx1 && rx2);
  // Runs end at a shorter datagram, a longer one, a change of destination, 64 segments and 65507 bytes.
  struct Item {
    size_t size;
    int to;
  };
  std::vector<Item> items;
  for (int i = 0; i < 5; ++i)
    items.push_back({1200, 1});
  items.push_back({600, 1});
  items.push_back({1200, 1});  // after a shorter one: a new run
  items.push_back({1300, 1});  // longer: a new run
  items.push_back({1300, 2});  // other destination
  items.push_back({1300, 2});
  items.push_back({1300, 1});
  for (int i = 0; i < 70; ++i)
    items.push_back({100, 2});  // more than 64 segments
  for (int i = 0; i < 60; ++i)
    items.push_back({1400, 1});  // more than 65507 bytes
  items.push_back({0, 1});       // empty datagrams are legal and never part of a run
  items.push_back({0, 1});

  SendBatch batch(items.size());
  std::vector<std::vector<uint8_t>> to1, to2;
  for (size_t i = 0; i < items.size(); ++i) {
    std::vector<uint8_t> d = make_datagram(uint32_t(i), items[i].size);
    add(batch, d, items[i].to == 1 ? rx1->local_address() : rx2->local_address());
    (items[i].to == 1 ? to1 : to2).push_back(d);
  }
  ASSERT_TRUE(tx->send(batch));
  EXPECT_EQ(tx->counters().datagrams_sent, items.size());
  EXPECT_EQ(tx->counters().send_errors, 0u);

  std::vector<Received> got1 = receive_count(*rx1, to1.size());
  std::vector<Received> got2 = receive_count(*rx2, to2.size());
  ASSERT_EQ(got1.size(), to1.size());
  ASSERT_EQ(got2.size(), to2.size());
  for (size_t i = 0; i < to1.size(); ++i)
    EXPECT_EQ(got1[i].bytes, to1[i]) << "datagram " << i << " to rx1";
  for (size_t i = 0; i < to2.size(); ++i)
    EXPECT_EQ(got2[i].bytes, to2[i]) << "datagram " << i << " to rx2";
  expect_nothing_queued(*rx1);
  expect_nothing_queued(*rx2);
}

// ---------------------------------------------------------------------------------------------------------
// UdpSocket: would-block and errors

class UdpSocketWouldBlock : public ::testing::TestWithParam<int> {};  // the errno that says "not now"

TEST_P(UdpSocketWouldBlock, KernelStopsMidBatch_ReturnsFalseAndKeepsTheRestInOrder) {
  UdpSocketOptions options;
  options.enable_gso = false;  // one message per datagram, so "10 messages" is "10 datagrams"
  auto tx = open_or_fail("127.0.0.1:0", options);
  auto rx = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(tx && rx);
  SendBatch batch;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 64; ++i) {
    sent.push_back(make_datagram(i, 200 + i));
    add(batch, sent.back(), rx->local_address());
  }

  {
    ScopedSendScript script(*tx, {{0, 10}, {GetParam(), 0}});
    EXPECT_FALSE(tx->send(batch));
    EXPECT_TRUE(script.finished());
  }
  EXPECT_EQ(tx->counters().send_would_block, 1u);
  EXPECT_EQ(tx->counters().datagrams_sent, 10u);
  EXPECT_EQ(tx->counters().send_errors, 0u);
  ASSERT_EQ(batch.size(), 54u);
  for (size_t i = 0; i < batch.size(); ++i) {
    ASSERT_EQ(batch.length(i), sent[10 + i].size());
    EXPECT_EQ(std::vector<uint8_t>(batch.data(i), batch.data(i) + batch.length(i)), sent[10 + i]);
    EXPECT_EQ(batch.destination(i), rx->local_address());
  }

  // The caller adds more after the leftovers, then sends again once writable.
  sent.push_back(make_datagram(64, 99));
  add(batch, sent.back(), rx->local_address());
  EXPECT_TRUE(tx->send(batch));
  EXPECT_TRUE(batch.empty());
  std::vector<Received> got = receive_count(*rx, sent.size());
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i)
    EXPECT_EQ(got[i].bytes, sent[i]) << "datagram " << i;
  expect_nothing_queued(*rx);
}

INSTANTIATE_TEST_SUITE_P(Errno, UdpSocketWouldBlock, ::testing::Values(EAGAIN, ENOBUFS),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(info.param == EAGAIN ? "EAGAIN" : "ENOBUFS");
                         });

TEST(UdpSocketWouldBlockGso, KernelStopsAfterOneRun_KeepsTheLaterRuns) {
  auto tx = open_or_fail("127.0.0.1:0");
  auto rx = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(tx && rx);
  if (!tx->gso_enabled()) GTEST_SKIP() << "this kernel has no UDP GSO";
  SendBatch batch;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 30; ++i) {
    sent.push_back(make_datagram(i, i < 20 ? 800 : 1200));  // two runs: 20 x 800, 10 x 1200
    add(batch, sent.back(), rx->local_address());
  }
  {
    ScopedSendScript script(*tx, {{0, 1}, {EAGAIN, 0}});
    EXPECT_FALSE(tx->send(batch));
    EXPECT_TRUE(script.finished());
  }
  ASSERT_EQ(batch.size(), 10u);
  for (size_t i = 0; i < batch.size(); ++i)
    EXPECT_EQ(std::vector<uint8_t>(batch.data(i), batch.data(i) + batch.length(i)), sent[20 + i]);
  EXPECT_TRUE(tx->send(batch));
  EXPECT_EQ(tx->counters().gso_sends, 2u);
  std::vector<Received> got = receive_count(*rx, sent.size());
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i)
    EXPECT_EQ(got[i].bytes, sent[i]) << "datagram " << i;
}

TEST(UdpSocketErrors, GsoRefusedButPlainSendWorks_DisablesGsoAndLosesNothing) {
  auto tx = open_or_fail("127.0.0.1:0");
  auto rx = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(tx && rx);
  if (!tx->gso_enabled()) GTEST_SKIP() << "this kernel has no UDP GSO";
  SendBatch batch;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 41; ++i) {
    sent.push_back(make_datagram(i, i < 40 ? 1200 : 700));
    add(batch, sent.back(), rx->local_address());
  }
  {
    ScopedSendScript script(*tx, {{EIO, 0}});  // as from a device without checksum offload
    EXPECT_TRUE(tx->send(batch));
    ASSERT_EQ(script.failed_calls(), std::vector<size_t>{41});  // the refused call was the GSO message
  }
  EXPECT_FALSE(tx->gso_enabled());
  EXPECT_EQ(tx->counters().gso_sends, 0u);
  EXPECT_EQ(tx->counters().send_errors, 0u);
  EXPECT_EQ(tx->counters().datagrams_sent, 41u);
  std::vector<Received> got = receive_count(*rx, sent.size());
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i)
    EXPECT_EQ(got[i].bytes, sent[i]) << "datagram " << i;
  expect_nothing_queued(*rx);
}

TEST(UdpSocketErrors, GsoRefusedAndPlainSendFailsToo_KeepsGsoAndDropsOnlyThatDatagram) {
  auto tx = open_or_fail("127.0.0.1:0");
  auto rx = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(tx && rx);
  if (!tx->gso_enabled()) GTEST_SKIP() << "this kernel has no UDP GSO";
  SendBatch batch;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 41; ++i) {
    sent.push_back(make_datagram(i, i < 40 ? 1200 : 700));
    add(batch, sent.back(), rx->local_address());
  }
  {
    // As when the segments exceed the path MTU: the GSO send says EINVAL, the plain one EMSGSIZE.
    ScopedSendScript script(*tx, {{EINVAL, 0}, {EMSGSIZE, 0}});
    EXPECT_TRUE(tx->send(batch));
    ASSERT_EQ(script.failed_calls(), (std::vector<size_t>{41, 1}));
  }
  EXPECT_TRUE(tx->gso_enabled());
  EXPECT_EQ(tx->counters().send_errors, 1u);
  EXPECT_EQ(tx->counters().datagrams_sent, 40u);
  std::vector<Received> got = receive_count(*rx, 40);
  ASSERT_EQ(got.size(), 40u);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i].bytes, sent[i + 1]) << "datagram " << i + 1;
  expect_nothing_queued(*rx);

  // GSO still in use for the next batch.
  for (uint32_t i = 0; i < 5; ++i)
    add(batch, make_datagram(i, 1000), rx->local_address());
  EXPECT_TRUE(tx->send(batch));
  EXPECT_EQ(tx->counters().gso_sends, 1u);
  EXPECT_EQ(receive_count(*rx, 5).size(), 5u);
}

TEST(UdpSocketErrors, PermanentErrorMidBatch_DropsThatDatagramAndSendsTheRest) {
  UdpSocketOptions options;
  options.enable_gso = false;
  auto tx = open_or_fail("127.0.0.1:0", options);
  auto rx = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(tx && rx);
  SendBatch batch;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 6; ++i) {
    sent.push_back(make_datagram(i, 500));
    add(batch, sent.back(), rx->local_address());
  }
  {
    ScopedSendScript script(*tx, {{0, 2}, {ENETUNREACH, 0}});
    EXPECT_TRUE(tx->send(batch));
    EXPECT_TRUE(script.finished());
  }
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(tx->counters().send_errors, 1u);
  EXPECT_EQ(tx->counters().datagrams_sent, 5u);
  std::vector<Received> got = receive_count(*rx, 5);
  ASSERT_EQ(got.size(), 5u);
  const std::vector<size_t> expected = {0, 1, 3, 4, 5};
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i].bytes, sent[expected[i]]) << "datagram " << expected[i];
}

TEST(UdpSocketErrors, IPv6DestinationFromIPv4Socket_CountedAndDroppedNotFatal) {
  auto tx = open_or_fail("127.0.0.1:0");
  auto rx = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(tx && rx);
  SendBatch batch;
  add(batch, make_datagram(0, 100), rx->local_address());
  add(batch, make_datagram(1, 100), *Address::parse("[::1]:9"));
  add(batch, make_datagram(2, 100), rx->local_address());
  add(batch, make_datagram(3, 100), Address());  // unspecified: nowhere to go either
  add(batch, make_datagram(4, 100), rx->local_address());
  EXPECT_TRUE(tx->send(batch));
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(tx->counters().send_errors, 2u);
  EXPECT_EQ(tx->counters().datagrams_sent, 3u);
  std::vector<Received> got = receive_count(*rx, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].bytes, make_datagram(0, 100));
  EXPECT_EQ(got[1].bytes, make_datagram(2, 100));
  EXPECT_EQ(got[2].bytes, make_datagram(4, 100));
}

TEST(UdpSocketErrors, IPv4DestinationFromIPv6OnlySocket_CountedAndDropped) {
  std::string why;
  auto tx = open_ipv6_loopback(&why);
  if (!tx) GTEST_SKIP() << "::1 unavailable: " << why;
  auto rx = open_or_fail("127.0.0.1:0");
  ASSERT_NE(rx, nullptr);
  SendBatch batch;
  add(batch, make_datagram(0, 100), rx->local_address());
  EXPECT_TRUE(tx->send(batch));
  EXPECT_EQ(tx->counters().send_errors, 1u);
  EXPECT_EQ(tx->counters().datagrams_sent, 0u);
}

// No script here: whatever the real kernel does with a send buffer far smaller than the batch, send()
// either takes everything or says "would block" and keeps the rest; nothing goes missing.
TEST(UdpSocketErrors, SendBufferSmallerThanBatch_NothingLost) {
  UdpSocketOptions small;
  small.send_buffer_bytes = 4096;  // the kernel's minimum is about this
  small.enable_gso = false;
  auto tx = open_or_fail("127.0.0.1:0", small);
  auto rx = open_or_fail("127.0.0.1:0");
  ASSERT_TRUE(tx && rx);
  SendBatch batch(256);
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 256; ++i) {
    sent.push_back(make_datagram(i, 1400));
    add(batch, sent.back(), rx->local_address());
  }
  for (int round = 0; round < 1000 && !tx->send(batch); ++round) {
    EXPECT_FALSE(batch.empty());
    pollfd p{tx->fd(), POLLOUT, 0};
    ASSERT_GE(::poll(&p, 1, 2000), 0);
  }
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(tx->counters().send_errors, 0u);
  EXPECT_EQ(tx->counters().datagrams_sent, sent.size());
  std::vector<Received> got = receive_count(*rx, sent.size());
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i)
    EXPECT_EQ(got[i].bytes, sent[i]) << "datagram " << i;
}

}  // namespace
}  // namespace peerlink::io
