// A Host that finds many datagrams queued acknowledges them batch by batch as it reads them, not once per
// turn: a sender shown a turn's worth acknowledged at once keeps room in its window for such bursts, and a
// queue in the receiver's socket then stands (docs/PROTOCOL.md 9.2). The sender here is a protocol Endpoint
// on a socket of the test's own, so that the burst and every acknowledgement can be counted.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "peerlink/host.hpp"
#include "transport/crypto/random.hpp"
#include "transport/io/service_loop.hpp"
#include "transport/protocol/endpoint.hpp"

namespace peerlink {
namespace {

using namespace std::chrono_literals;
using io::monotonic_now;

// A UDP socket on 127.0.0.1 that sends to one address.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(uint16_t peer_port) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    a.sin_port = htons(peer_port);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~LoopbackSocket() { ::close(fd_); }
  void send(const uint8_t* data, size_t len) { EXPECT_EQ(::send(fd_, data, len, 0), ssize_t(len)); }
  // The next datagram within `wait`, or 0.
  size_t receive(uint8_t* buf, size_t cap, std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, int(wait.count())) <= 0) return 0;
    const ssize_t n = ::recv(fd_, buf, cap, MSG_DONTWAIT);
    return n > 0 ? size_t(n) : 0;
  }

 private:
  int fd_ = -1;
};

TEST(HostReceiveBatches, ABurstQueuedInTheSocket_AcknowledgedBatchByBatch) {
  // The receiving Host; its service thread can be held in the message callback while the burst lands.
  std::mutex mutex;
  std::condition_variable changed;
  bool holding = false, release = false;
  size_t delivered = 0;
  auto let_go = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    release = true;
    changed.notify_all();
  };
  HostConfig config;
  config.log_level = LogLevel::kWarning;
  config.callback_thread = CallbackThread::kService;
  config.address_validation = AddressValidation::kNever;
  // A stock kernel's net.core.rmem_max, which is what a test not run as root gets: the same room (about
  // 180 datagrams of 1,200 bytes on loopback) whoever runs it.
  config.socket_buffer_bytes = 212992;
  Host host(config);
  struct LetGo {  // before the Host stops, whatever failed: its service thread may be the one held
    std::function<void()> f;
    ~LetGo() { f(); }
  } let_go_at_exit{let_go};
  ASSERT_TRUE(host.set_message_callback([&](Message&&) {
    std::unique_lock<std::mutex> lock(mutex);
    if (delivered++ > 0) {
      changed.notify_all();
      return;
    }
    holding = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
  }));
  Result<ListenSocketHandle> listening = host.listen(0);
  ASSERT_TRUE(listening) << listening.error().message;
  const uint16_t port = host.listen_address(*listening)->port();

  // The sender: a window large enough for the whole burst at once, no pacing, an ack asked for every two
  // packets (the default), never less often.
  protocol::EndpointConfig cfg;
  cfg.connection.max_packet_size = 1200;
  cfg.connection.initial_window_packets = 4000;
  cfg.connection.pacing = false;
  cfg.connection.max_ack_threshold_request = 0;
  crypto::SystemRandom rng;
  protocol::Endpoint sender(cfg, Identity::generate(), rng);
  const protocol::PathAddress to_host = protocol::PathAddress::from_u64(1);
  LoopbackSocket socket(port);
  uint8_t buf[2048];
  auto flush = [&] {
    protocol::PathAddress to;
    size_t sent = 0;
    while (size_t n = sender.poll_transmit(monotonic_now(), buf, sizeof buf, to)) {
      socket.send(buf, n);
      ++sent;
    }
    return sent;
  };
  const protocol::ConnectionId c = sender.connect(monotonic_now(), to_host, host.identity().public_key());
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    flush();
    const auto* conn = sender.connection(c);
    ASSERT_NE(conn, nullptr);
    if (conn->state() == protocol::ConnectionState::kConnected) break;
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "no handshake";
    if (size_t n = socket.receive(buf, sizeof buf, 10ms))
      sender.handle_datagram(monotonic_now(), to_host, buf, n);
    if (sender.next_timeout() <= monotonic_now()) sender.handle_timeout(monotonic_now());
  }

  // One message to hold the Host's service thread in the callback.
  const uint8_t first[8] = {};
  ASSERT_EQ(sender.send(c, first, sizeof first, protocol::send_flags::kReliable, 0, monotonic_now()),
            protocol::SendResult::kOk);
  for (auto until = std::chrono::steady_clock::now() + 10s;;) {
    flush();
    std::unique_lock<std::mutex> lock(mutex);
    if (changed.wait_for(lock, 10ms, [&] { return holding; })) break;
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "the first message never arrived";
    lock.unlock();
    if (size_t n = socket.receive(buf, sizeof buf, 0ms))
      sender.handle_datagram(monotonic_now(), to_host, buf, n);
  }
  while (size_t n = socket.receive(buf, sizeof buf, 20ms))  // the acknowledgements of the first message
    sender.handle_datagram(monotonic_now(), to_host, buf, n);

  // About 155 packets queued in the Host's socket while its service thread is held: almost 10 batches of
  // 16, more than the 8 a turn reads.
  const std::vector<uint8_t> burst(150 * 1200, 0x5a);
  ASSERT_EQ(sender.send(c, burst.data(), burst.size(), protocol::send_flags::kReliable, 0, monotonic_now()),
            protocol::SendResult::kOk);
  const size_t burst_packets = flush();
  ASSERT_GE(burst_packets, 150u);
  let_go();

  // Each acknowledgement that comes back takes the packets it covers out of flight.
  const uint64_t in_flight_at_start = sender.stats(c, monotonic_now())->bytes_in_flight;
  uint64_t in_flight = in_flight_at_start, largest_step = 0;
  size_t acks = 0;
  while (in_flight > 0) {
    const size_t n = socket.receive(buf, sizeof buf, 2000ms);
    ASSERT_GT(n, 0u) << "the Host stopped acknowledging with " << in_flight << " bytes in flight";
    sender.handle_datagram(monotonic_now(), to_host, buf, n);
    const uint64_t left = sender.stats(c, monotonic_now())->bytes_in_flight;
    if (left < in_flight) {
      largest_step = std::max(largest_step, in_flight - left);
      ++acks;
    }
    in_flight = left;
  }
  // Read at 8 batches a turn and acknowledged once a turn, an acknowledgement would cover 128 packets.
  const uint64_t packet_bytes = in_flight_at_start / burst_packets;
  EXPECT_LE(largest_step, 3 * 16 * packet_bytes)
      << "one acknowledgement covered " << largest_step / packet_bytes << " packets";
  EXPECT_GE(acks, burst_packets / (3 * 16));

  // The message's last bytes, which Nagle holds back until its delay ends, go out on the sender's timer.
  for (auto until = std::chrono::steady_clock::now() + 5s;;) {
    flush();
    std::unique_lock<std::mutex> lock(mutex);
    if (changed.wait_for(lock, 1ms, [&] { return delivered >= 2; })) break;
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "the burst was never delivered";
    lock.unlock();
    if (size_t n = socket.receive(buf, sizeof buf, 0ms))
      sender.handle_datagram(monotonic_now(), to_host, buf, n);
    if (sender.next_timeout() <= monotonic_now()) sender.handle_timeout(monotonic_now());
  }
  EXPECT_EQ(delivered, 2u) << "the burst is one message";
}

}  // namespace
}  // namespace peerlink
